"""Consumer lag of the worker's group on the event topic: a pure computation over
offsets, and a reader that fetches those offsets from any Kafka broker.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping


@dataclass(frozen=True, slots=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group has committed nothing here yet
    earliest: int
    end: int
    lag: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class LagReport:
    group: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "total_lag": self.total_lag,
                "partitions": [asdict(p) for p in self.partitions]}


def compute_lag(group: str, topic: str, committed: Mapping[int, int | None],
                earliest: Mapping[int, int], end: Mapping[int, int]) -> LagReport:
    """Lag per partition: end - committed; before any commit, end - earliest.

    A committed offset beyond the reported end cannot be right: some brokers
    report a wrong high watermark (Tansu for multi-record batches), or the
    topic was deleted and created again since the commit. The lag is then
    shown as 0 and the row says so plainly.
    """
    rows = []
    for partition in sorted(end):
        done = committed.get(partition)
        start = earliest.get(partition, 0)
        note = ""
        if done is None:
            lag = end[partition] - start
        elif done > end[partition]:
            lag = 0
            note = (f"committed offset {done} is beyond the reported end {end[partition]}: "
                    "the broker reports a wrong high watermark, or the topic was recreated")
        else:
            lag = end[partition] - max(done, start)
        rows.append(PartitionLag(topic, partition, done, start, end[partition], max(lag, 0), note))
    return LagReport(group, tuple(rows))


async def consumer_lag(bootstrap: str, group: str, topic: str,
                       security: Mapping[str, Any] | None = None) -> LagReport:
    """Read committed, earliest and end offsets from the broker and compute the lag."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    security = dict(security or {})
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **security)
    try:
        await admin.start()
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic)
        if partitions is None:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        end = {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()} if tps else {}
        earliest = {tp.partition: o for tp, o in (await consumer.beginning_offsets(tps)).items()} if tps else {}
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps) if tps else {}
        return compute_lag(group, topic, _committed_in(offsets, topic), earliest, end)
    finally:
        # Also after a failed start (broker unreachable): nothing is left unclosed.
        await consumer.stop()
        await admin.close()


async def committed_offsets(bootstrap: str, group: str, topic: str,
                            security: Mapping[str, Any] | None = None) -> dict[int, int]:
    """Partition -> the group's committed offset on ``topic``; partitions without one are left out."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **dict(security or {}))
    try:
        await admin.start()
        # Name the partitions: asking for "all of the group's" is an OffsetFetch
        # form some brokers (Tansu) answer in a shape aiokafka cannot decode.
        described = await admin.describe_topics([topic])
        partitions = [p["partition"] for t in described if t["topic"] == topic for p in t["partitions"]]
        offsets = await admin.list_consumer_group_offsets(
            group, partitions=[TopicPartition(topic, p) for p in partitions])
    finally:
        await admin.close()
    return _committed_in(offsets, topic)


def _committed_in(offsets: Mapping[Any, Any], topic: str) -> dict[int, int]:
    """Partition -> offset from an OffsetFetch answer; -1 (nothing committed) is left out."""
    return {tp.partition: meta.offset for tp, meta in offsets.items()
            if tp.topic == topic and meta is not None and meta.offset >= 0}
