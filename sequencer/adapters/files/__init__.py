"""Files: CSV, Parquet and JSON lines sources, decision and reject CSVs, JSON checkpoints, config files, the file replay."""
