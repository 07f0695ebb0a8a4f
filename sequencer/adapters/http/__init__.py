"""HTTP: the worker's API views (served by Faust's web server) and the small client of that API."""
