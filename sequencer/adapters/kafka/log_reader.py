"""Reading a topic without a consumer group: to its end (rebuild, verify), or one offset
range of a partition (`read_range`, the worker's check of a delivery hole).

End of a partition: Tansu's ListOffsets end offset is short by (records in
the last batch - 1), so it is not trusted as "done". A partition is read until
the position reaches the high watermark carried by the *fetch* responses
(correct on Tansu and Kafka) and the ListOffsets end, whichever is larger.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from sequencer.app.records import SourceRecord
from sequencer.domain import SequencerError

#: How long an empty poll waits (ms) while partitions are not yet caught up.
POLL_MS = 100

#: Every read of the event log (the worker's consumer too) skips records of
#: aborted transactions: a feed's transactional producer may abort, and a
#: rebuild must read what the worker folded. Without transactions it changes nothing.
READ_ISOLATION = "read_committed"


class TopicReadError(SequencerError):
    """The topic could not be read: the broker is unreachable or a partition did not reach its end in time."""


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's changelog topic of ``table`` in app ``app_id``."""
    return f"{app_id}-{table}-changelog"


@dataclass
class TopicRead:
    """What a read covered: partition -> first and next offset; the topic's partition
    count (all its partitions, also those ``only_partitions`` left out); and
    partition -> ``(first offset wanted, log start)`` where the log starts
    past the offset the read was to start from: those records were deleted by
    the broker (retention, DeleteRecords), so what is read misses them."""

    start: dict[int, int] = field(default_factory=dict)
    end: dict[int, int] = field(default_factory=dict)
    records: int = 0
    exists: bool = True
    partitions: int = 0
    deleted: dict[int, tuple[int, int]] = field(default_factory=dict)

    def deleted_text(self, topic: str) -> str:
        """``topic:0 offsets 0-99, ...``: the records `deleted` names, for messages."""
        return ", ".join(f"{topic}:{p} offsets {first}-{start - 1}" for p, (first, start) in sorted(self.deleted.items()))


async def read_topic(bootstrap: str, topic: str, on_records: Callable[[list], None], *,
                     start_offsets: Mapping[int, int] | None = None,
                     only_partitions: Iterable[int] | None = None,
                     security: Mapping[str, Any] | None = None,
                     on_total: Callable[[int], None] | None = None,
                     on_partitions: Callable[[int], None] | None = None,
                     timeout_s: float = 120.0) -> TopicRead:
    """Read ``topic`` from ``start_offsets`` (earliest for partitions not named) to its end.

    ``on_records`` receives lists of aiokafka ``ConsumerRecord``, in offset
    order per partition; ``only_partitions`` limits the read. ``on_total`` is told the estimated record count
    (from ListOffsets, a lower bound on Tansu) once it is known; ``on_partitions`` the
    topic's partition count, before any record.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024, isolation_level=READ_ISOLATION,
                                **dict(security or {}))
    try:
        await consumer.start()
    except (KafkaError, OSError) as error:
        await consumer.stop()
        detail = str(error) if str(error).startswith(type(error).__name__) else f"{type(error).__name__}: {error}"
        raise TopicReadError(f"broker {bootstrap} unreachable ({detail}); cannot read {topic}") from error
    result = TopicRead()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            result.exists = False
            return result
        result.partitions = len(partitions)
        if on_partitions is not None:
            on_partitions(result.partitions)
        if only_partitions is not None:
            partitions = set(partitions) & set(only_partitions)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return result
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        listed_end = await consumer.end_offsets(tps)
        for tp in tps:
            # A log's first offset is 0 until the broker deletes records.
            wanted = start_offsets.get(tp.partition, 0) if start_offsets else 0
            start = max(begin[tp], wanted)
            if begin[tp] > wanted:
                result.deleted[tp.partition] = (wanted, begin[tp])
            consumer.seek(tp, start)
            result.start[tp.partition] = start
        if on_total is not None:
            on_total(sum(max(0, listed_end[tp] - result.start[tp.partition]) for tp in tps))
        deadline = time.monotonic() + timeout_s
        pending = set(tps)
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=POLL_MS, max_records=20000)
            got = False
            for tp, records in batches.items():
                if records:
                    got = True
                    result.records += len(records)
                    on_records(records)
            for tp in list(pending):
                fetched_hw = consumer.highwater(tp)
                position = await consumer.position(tp)
                if fetched_hw is not None and position >= max(fetched_hw, listed_end[tp]):
                    pending.discard(tp)
            if pending and not got and time.monotonic() > deadline:
                raise TopicReadError(f"reading {topic}: partitions {sorted(tp.partition for tp in pending)} "
                                   f"did not reach their end within {timeout_s:.0f}s")
            if got:
                deadline = time.monotonic() + timeout_s
        for tp in tps:
            result.end[tp.partition] = await consumer.position(tp)
    finally:
        await consumer.stop()
    return result


@dataclass
class ChangelogContents:
    """Last value per key and partition of a changelog topic (None = tombstone)."""

    topic: str
    values: dict[str, dict[int, bytes | None]] = field(default_factory=dict)
    exists: bool = True

    def live(self, stream: str) -> dict[int, bytes]:
        """Partitions where ``stream`` currently has a (non-deleted) value."""
        return {p: v for p, v in self.values.get(stream, {}).items() if v is not None}

    def streams(self) -> set[str]:
        return {s for s in self.values if self.live(s)}


async def read_changelog(bootstrap: str, topic: str, security: Mapping[str, Any] | None = None) -> ChangelogContents:
    contents = ChangelogContents(topic)

    def take(records: list) -> None:
        for record in records:
            if record.key is None:
                continue
            stream = record.key.decode(errors="replace")
            contents.values.setdefault(stream, {})[record.partition] = record.value

    read = await read_topic(bootstrap, topic, take, security=security)
    contents.exists = read.exists
    return contents


async def read_range(bootstrap: str, topic: str, partition: int, start: int, stop: int,
                     security: Mapping[str, Any] | None = None, timeout_s: float = 30.0) -> list[SourceRecord]:
    """Records ``start <= offset < stop`` of one partition, read without a group."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                isolation_level=READ_ISOLATION, **dict(security or {}))
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
                    found.append(SourceRecord(topic, partition, record.offset, record.key, record.value,
                                              record.timestamp))
                position = max(position, record.offset + 1)
            if not batches:
                position = max(position, await consumer.position(tp))
    finally:
        await consumer.stop()
    return found
