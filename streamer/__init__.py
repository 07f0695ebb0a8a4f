"""Streamer: publishes day events from files to Kafka."""
