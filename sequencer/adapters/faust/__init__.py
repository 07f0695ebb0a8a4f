"""Faust: the worker app, its consumer and fetch tweaks, the batch commit's ports, the stream states over its tables."""
