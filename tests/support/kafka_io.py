"""Kafka input and output for tests: produce records a given way, read a topic back.

Reading uses the product's own reader (`sequencer.adapters.kafka.log_reader.read_topic`), so
the tests read a topic to its end exactly as ``rebuild`` and ``verify`` do.
"""

from __future__ import annotations

import asyncio
from typing import Iterable

from sequencer.adapters.kafka.log_reader import read_topic


def read_topic_values(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value of ``topic`` from the start to its end, in offset order per
    partition (none when the topic does not exist)."""
    values: list[bytes] = []
    asyncio.run(read_topic(bootstrap, topic, lambda records: values.extend(r.value for r in records)))
    return values


def produce_one_by_one(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> dict[int, int]:
    """Send each record alone and wait for it (one record per batch: Tansu's high
    watermark is right only then); returns how many went to each partition."""
    from aiokafka import AIOKafkaProducer

    async def send() -> dict[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        counts: dict[int, int] = {}
        try:
            for key, value in records:
                meta = await producer.send_and_wait(topic, value, key=key)
                counts[meta.partition] = counts.get(meta.partition, 0) + 1
        finally:
            await producer.stop()
        return counts

    return asyncio.run(send())


def produce_in_batches(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> dict[int, int]:
    """Send all records at once with a linger, so the producer packs many into each
    batch (the case where Tansu's ListOffsets answer falls short); returns how
    many went to each partition, from the acknowledgements."""
    from aiokafka import AIOKafkaProducer

    async def send() -> dict[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=100)
        await producer.start()
        try:
            futures = [await producer.send(topic, value, key=key) for key, value in records]
            acks = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        counts: dict[int, int] = {}
        for meta in acks:
            counts[meta.partition] = counts.get(meta.partition, 0) + 1
        return counts

    return asyncio.run(send())


def list_offsets_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The ListOffsets (latest) answer per partition, as the broker gives it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

    return asyncio.run(read())
