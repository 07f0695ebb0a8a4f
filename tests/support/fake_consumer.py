"""An in-memory `gap_repair.ConsumerPort`: a partitioned log, a position per
partition and a group's committed offsets, with nothing but dictionaries.

It behaves as the contract suite (tests/contract/test_consumer_port.py) says a
consumer port behaves, and that suite runs against it and against the Faust
port on the embedded broker. `deliver` stands for the consumer handing records
to the stream (what Faust's fetcher does by itself).
"""

from __future__ import annotations

from collections.abc import Mapping

from sequencer.domain import partition_key, split_partition_key
from sequencer.app.records import SourceRecord


class InMemoryConsumerPort:
    """A consumer of ``topic`` assigned every partition of ``log`` (partition -> (key, value) per offset)."""

    def __init__(self, topic: str, log: Mapping[int, list[tuple[bytes | None, bytes | None]]]) -> None:
        self.topic = topic
        self.log = {partition: list(records) for partition, records in log.items()}
        self.positions = {partition_key(topic, p): 0 for p in self.log}
        self.fetched_ends: dict[str, int] = {}  # the end each partition had at its last fetch
        self.group: dict[str, int] = {}
        self.starts: dict[str, int] = {}  # the first offset of a partition the broker deleted records of

    def delete_records(self, tp: str, before: int) -> None:
        """What retention does: the records before ``before`` are gone; a position below
        it moves to it at the next fetch (``auto_offset_reset=earliest``)."""
        self._records(tp)
        self.starts[tp] = before

    def _records(self, tp: str) -> list[tuple[bytes | None, bytes | None]]:
        topic, partition = split_partition_key(tp)
        if topic != self.topic or partition not in self.log:
            raise KeyError(f"{tp} is not assigned")
        return self.log[partition]

    def deliver(self, tp: str, at_most: int) -> list[SourceRecord]:
        """Hand out up to ``at_most`` records from the position on (a fetch), moving the position."""
        records = self._records(tp)
        start = max(self.positions[tp], self.starts.get(tp, 0))
        stop = min(len(records), start + at_most)
        self.positions[tp] = stop
        self.fetched_ends[tp] = len(records)
        return [self._record(tp, offset) for offset in range(start, stop)]

    def _record(self, tp: str, offset: int) -> SourceRecord:
        topic, partition = split_partition_key(tp)
        key, value = self.log[partition][offset]
        return SourceRecord(topic, partition, offset, key, value)

    # --- ConsumerPort -----------------------------------------------------------

    def assigned(self) -> list[str]:
        return sorted(self.positions)

    def highwater(self, tp: str) -> int | None:
        return self.fetched_ends.get(tp)

    async def position(self, tp: str) -> int:
        self._records(tp)
        return self.positions[tp]

    async def seek(self, tp: str, offset: int) -> None:
        self._records(tp)
        self.positions[tp] = offset

    async def commit(self, offsets: Mapping[str, int]) -> bool:
        for tp in offsets:
            self._records(tp)
        self.group.update(offsets)
        return True

    async def group_offsets(self) -> dict[str, int]:
        return dict(self.group)

    async def read_range(self, tp: str, start: int, stop: int) -> list[SourceRecord]:
        records = self._records(tp)
        return [self._record(tp, offset) for offset in range(max(start, self.starts.get(tp, 0)),
                                                              min(stop, len(records)))]

    async def log_start(self, tp: str) -> int:
        self._records(tp)
        return self.starts.get(tp, 0)
