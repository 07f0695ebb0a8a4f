"""`sequencer.adapters.kafka.log_reader` on the embedded broker: a topic read to its true end
(also when the broker's listed end is short: records produced in batches),
from given offsets or partitions, a missing topic, an unreachable broker, and
the last value per key of a changelog."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from sequencer.adapters.kafka.embedded_broker import free_port
from sequencer.adapters.kafka.log_reader import TopicReadError, read_changelog, read_topic
from sequencer.adapters.kafka.topics import create_topics
from tests.support.kafka_io import list_offsets_ends, produce_in_batches

pytestmark = pytest.mark.broker


def records(count: int) -> list[tuple[bytes, bytes]]:
    return [(f"K{i % 7}".encode(), f"value {i}".encode()) for i in range(count)]


async def read_all(bootstrap: str, topic: str, **options):
    seen: dict[int, list[tuple[int, bytes]]] = {}

    def take(batch):
        for record in batch:
            seen.setdefault(record.partition, []).append((record.offset, record.value))

    read = await read_topic(bootstrap, topic, take, **options)
    return read, seen


def test_a_topic_is_read_to_its_end_even_when_the_listed_end_is_short(kafka_bootstrap):
    topic = f"reader{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, {topic: 2}))
    sent = records(400)
    per_partition = produce_in_batches(kafka_bootstrap, topic, sent)  # many records per produce batch
    totals: list[int] = []
    read, seen = asyncio.run(read_all(kafka_bootstrap, topic, on_total=totals.append))
    assert read.exists and read.records == len(sent)
    assert {p: len(found) for p, found in seen.items()} == per_partition
    for partition, found in seen.items():
        assert [offset for offset, _ in found] == list(range(per_partition[partition]))  # in offset order
    assert sorted(v for found in seen.values() for _, v in found) == sorted(v for _, v in sent)
    assert read.start == {0: 0, 1: 0} and read.end == per_partition
    # on_total is told the listed estimate: a lower bound here (that is why it is not trusted as the end)
    assert totals == [sum(list_offsets_ends(kafka_bootstrap, topic).values())] and totals[0] <= len(sent)


def test_start_offsets_and_only_partitions_limit_the_read(kafka_bootstrap):
    topic = f"reader{uuid.uuid4().hex[:8]}"
    asyncio.run(create_topics(kafka_bootstrap, {topic: 2}))
    per_partition = produce_in_batches(kafka_bootstrap, topic, records(60))
    read, seen = asyncio.run(read_all(kafka_bootstrap, topic, start_offsets={0: 5}, only_partitions=[0]))
    assert set(seen) == {0} and read.start == {0: 5}
    assert [offset for offset, _ in seen[0]] == list(range(5, per_partition[0]))
    assert read.end == {0: per_partition[0]}


async def test_a_missing_topic_reads_as_absent(kafka_bootstrap):
    read, seen = await read_all(kafka_bootstrap, f"never-made-{uuid.uuid4().hex[:8]}")
    assert not read.exists and read.records == 0 and seen == {}


async def test_an_unreachable_broker_is_named_in_a_clear_error():
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(TopicReadError, match=f"broker {address} unreachable.*cannot read some-topic"):
        await read_topic(address, "some-topic", lambda batch: None, timeout_s=5)


async def test_a_changelog_keeps_the_last_value_per_key_and_partition(kafka_bootstrap):
    topic = f"reader{uuid.uuid4().hex[:8]}-changelog"
    await create_topics(kafka_bootstrap, {topic: 2})
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        for partition, key, value in [(0, b"ES1", b"old"), (0, b"ES1", b"new"), (1, b"ES1", b"moved"),
                                      (1, b"NQ2", b"there"), (1, b"NQ2", None), (0, None, b"no key")]:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()
    contents = await read_changelog(kafka_bootstrap, topic)
    assert contents.exists
    assert contents.values == {"ES1": {0: b"new", 1: b"moved"}, "NQ2": {1: None}}
    assert contents.live("ES1") == {0: b"new", 1: b"moved"} and contents.live("NQ2") == {}
    assert contents.streams() == {"ES1"}
