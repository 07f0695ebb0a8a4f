"""Kafka (aiokafka): topics, reading a topic to its end, lag, rebuild and verify from the log, the embedded broker."""
