"""Detect and fill holes in what the stream delivered, using the states' own offsets.

Faust's consumer was seen (on a loaded 2-core machine, after a restart) to
commit past records it never handed to the agent: the states were then
silently missing days. Our states know how far they got (``source_offsets``),
so the worker checks every batch: per partition, the first record must be at
or below the next offset the worker expects. A batch that starts beyond it
has a hole; the missing range is read with a plain consumer and folded first.
Records that were in fact applied are recognised as redeliveries and skipped.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from .processor import SourceRecord

logger = logging.getLogger(__name__)


class PartitionPositions:
    """The next offset the worker expects per ``topic:partition`` (pure bookkeeping)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._learned: set[str] = set()

    def forget(self) -> None:
        """After a rebalance: what this worker expects must be learned again."""
        self._next.clear()
        self._learned.clear()

    def knows(self, tp: str) -> bool:
        return tp in self._learned

    def learn(self, tp: str, offsets: Iterable[int]) -> None:
        """Seed from the source offsets the states of this partition hold."""
        self._learned.add(tp)
        best = max(offsets, default=None)
        if best is not None and best > self._next.get(tp, -1):
            self._next[tp] = best

    def holes(self, records: Iterable[SourceRecord]) -> list[tuple[str, int, int]]:
        """``(tp, start, stop)`` for every offset range the records skip, per partition.

        Offsets a partition's records jump over (before the first, or between
        two) are holes once the partition's position is known. A topic written
        with transactions has such gaps for its commit markers: reading them
        finds nothing and costs one fetch.
        """
        found = []
        expected = dict(self._next)
        for record in records:
            tp = f"{record.topic}:{record.partition}"
            position = expected.get(tp)
            if position is not None and record.offset > position:
                found.append((tp, position, record.offset))
            if position is None or record.offset + 1 > position:
                expected[tp] = record.offset + 1
        return found

    def advance(self, records: Iterable[SourceRecord]) -> None:
        for record in records:
            tp = f"{record.topic}:{record.partition}"
            if record.offset + 1 > self._next.get(tp, -1):
                self._next[tp] = record.offset + 1


async def read_range(bootstrap: str, topic: str, partition: int, start: int, stop: int,
                     security: Mapping[str, Any] | None = None, timeout_s: float = 30.0) -> list[SourceRecord]:
    """Records ``start <= offset < stop`` of one partition, read without a group."""
    import time

    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                **dict(security or {}))
    await consumer.start()
    found: list[SourceRecord] = []
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = time.monotonic() + timeout_s
        position = start
        while position < stop and time.monotonic() < deadline:
            batches = await consumer.getmany(tp, timeout_ms=500, max_records=5000)
            for record in batches.get(tp, []):
                if start <= record.offset < stop:
                    found.append(SourceRecord(topic, partition, record.offset, record.key, record.value))
                position = max(position, record.offset + 1)
            if not batches:
                position = max(position, await consumer.position(tp))
    finally:
        await consumer.stop()
    return found
