"""Find records the stream never handed to the agent, using the states' own offsets.

Faust's consumer was seen (right after a worker start, on Tansu, about one
start in three) to fetch records and never hand them to the agent: the fetch
position moves on, the stream skips them, and the states silently miss days.
Faust drops them while its flow or generation changes (see
docs/benchmarks.md, "Delivery holes"). Our states know how far they got
(``source_offsets``), so the worker checks what it is given:

- a batch whose records jump past the next offset a partition expects has a
  hole: the records of that partition from the hole on are not folded, and
  the consumer is sought back to the hole, so Faust delivers (and acks, and
  commits) them again through its normal path;
- a partition whose fetch position is past what it expects while nothing
  arrives has lost its tail the same way (`StallWatch`): it is sought back too.

A hole that comes back at the same offset after a seek is checked with a
plain read (`read_range`): transaction markers and compaction leave offsets
with no record, and those are accepted.
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

    def expected(self, tp: str) -> int | None:
        return self._next.get(tp)

    def learn(self, tp: str, offsets: Iterable[int]) -> None:
        """Seed from the source offsets (next offsets) the states of this partition hold."""
        self._learned.add(tp)
        best = max(offsets, default=None)
        if best is not None and best > self._next.get(tp, -1):
            self._next[tp] = best

    def split_at_holes(self, records: Iterable[SourceRecord]) -> tuple[list[SourceRecord], dict[str, tuple[int, int]]]:
        """``(kept, holes)``: the records before each partition's first hole, and the holes.

        ``holes`` maps ``tp`` to ``(start, stop)``: offsets ``start <= o < stop``
        were skipped. Records of a partition from its first hole on are left
        out of ``kept``; they come again after a seek to ``start``. Offsets
        before a partition's known position are redeliveries, never holes.
        """
        kept: list[SourceRecord] = []
        holes: dict[str, tuple[int, int]] = {}
        expected = dict(self._next)
        for record in records:
            tp = record.partition_key
            if tp in holes:
                continue
            position = expected.get(tp)
            if position is not None and record.offset > position:
                holes[tp] = (position, record.offset)
                continue
            kept.append(record)
            if position is None or record.offset + 1 > position:
                expected[tp] = record.offset + 1
        return kept, holes

    def accept_gap(self, tp: str, stop: int) -> None:
        """Offsets before ``stop`` hold no record (markers, compaction): move on."""
        if stop > self._next.get(tp, -1):
            self._next[tp] = stop

    def advance(self, records: Iterable[SourceRecord]) -> None:
        for record in records:
            tp = record.partition_key
            if record.offset + 1 > self._next.get(tp, -1):
                self._next[tp] = record.offset + 1


class StallWatch:
    """Partitions whose fetch position stays past the expected offset with nothing arriving.

    `observe` is called every few seconds with, per partition, the offset the
    worker expects next, the consumer's fetch position and a counter of
    batches handled; a partition is stalled once the same picture was seen
    twice in a row (records merely waiting in the stream's buffer move the
    batch counter on).
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int, int]] = {}

    def observe(self, tp: str, expected: int | None, position: int | None, batches: int) -> bool:
        if expected is None or position is None or position <= expected:
            self._seen.pop(tp, None)
            return False
        picture = (expected, position, batches)
        stalled = self._seen.get(tp) == picture
        self._seen[tp] = picture
        if stalled:
            del self._seen[tp]
        return stalled

    def forget(self) -> None:
        self._seen.clear()


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
