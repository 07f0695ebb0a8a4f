"""Topics the worker creates keep every record: the event log is what rebuilds read
from the start, and a broker's default retention (7 days on Apache Kafka) would
delete days a worker that was down longer has not folded yet."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from sequencer.cli.worker_cmd import ensure_topics
from sequencer.settings import Settings

pytestmark = pytest.mark.broker


async def _topic_configs(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    finally:
        await admin.close()
    return {resource[3]: {entry[0]: entry[1] for entry in resource[4]}
            for response in responses for resource in response.resources}


def test_the_worker_creates_its_three_topics_without_retention_limits(kafka_bootstrap):
    name = "t" + uuid.uuid4().hex[:10]
    topics = [f"{name}.day-events", f"{name}.decisions", f"{name}.dead-letters"]
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "SEQUENCER_CONFIG_NAME": name,
                                  "SEQUENCER_TOPIC_EVENTS": topics[0], "SEQUENCER_TOPIC_DECISIONS": topics[1],
                                  "SEQUENCER_TOPIC_DEAD_LETTERS": topics[2], "SEQUENCER_PARTITIONS": "2"})
    assert ensure_topics(settings, announce=lambda line: None) == 2
    configs = asyncio.run(_topic_configs(kafka_bootstrap, topics))
    for topic in topics:
        assert configs[topic].get("retention.ms") == "-1", (topic, configs[topic])
        assert configs[topic].get("retention.bytes") == "-1", (topic, configs[topic])
        assert configs[topic].get("cleanup.policy", "delete") == "delete", (topic, configs[topic])


def test_the_streamer_creates_a_missing_events_topic_as_the_worker_would(kafka_bootstrap, tmp_path, monkeypatch):
    """Published first, before any worker: without this the broker makes the topic with
    its own defaults (partition count, Apache Kafka's 7-day retention)."""
    from sequencer.adapters.kafka.topics import partition_counts
    from streamer.cli import main as streamer_main

    from tests.support.recovery_helpers import SAMPLE

    topic = "t" + uuid.uuid4().hex[:10] + ".day-events"
    monkeypatch.setenv("SEQUENCER_PARTITIONS", "2")  # the embedded broker would make 3
    assert streamer_main(["publish", str(SAMPLE / "trades_ES.csv"), "--bootstrap", kafka_bootstrap,
                          "--topic", topic, "--rejects", str(tmp_path / "rejects.csv")]) == 0
    assert asyncio.run(partition_counts(kafka_bootstrap, [topic])) == {topic: 2}
    configs = asyncio.run(_topic_configs(kafka_bootstrap, [topic]))[topic]
    assert configs.get("retention.ms") == "-1" and configs.get("retention.bytes") == "-1", configs
