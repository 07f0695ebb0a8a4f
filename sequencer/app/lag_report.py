"""Consumer lag as a pure computation over offsets: per partition end - committed (before
any commit, end - earliest), and the dates of the unconsumed tail, for freshness.

The offsets come from `sequencer.adapters.kafka.lag` (which says why the end is the larger of
ListOffsets and the fetch high watermark); nothing here talks to a broker.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from sequencer.app.codecs import decode_payload
from sequencer.domain import InvalidEvent
from sequencer.domain.events import STREAM_NAME


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
    #: Members of the group when read (None: not known, e.g. the broker did not say).
    members: int | None = None

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "total_lag": self.total_lag, "members": self.members,
                "partitions": [asdict(p) for p in self.partitions]}


@dataclass
class TailDates:
    """Dates per stream in the records the group has not consumed yet (its lag)."""

    dates: dict[str, set[str]] = field(default_factory=dict)
    partition_of: dict[str, int] = field(default_factory=dict)  # stream -> partition of its records
    records: int = 0
    #: True when the tail was longer than the reading's limit: dates past it were not read.
    truncated: bool = False

    def only(self, partitions: set[int]) -> "TailDates":
        """The streams whose records are on ``partitions`` (a worker's own)."""
        keep = {s for s, p in self.partition_of.items() if p in partitions}
        return TailDates({s: self.dates[s] for s in keep}, {s: self.partition_of[s] for s in keep},
                         self.records, self.truncated)

    def add(self, partition: int, value: bytes | None) -> None:
        self.records += 1
        found = stream_and_date(value)
        if found is not None:
            stream, date = found
            self.dates.setdefault(stream, set()).add(date)
            self.partition_of[stream] = partition


@dataclass(frozen=True, slots=True)
class GroupReading:
    report: LagReport
    tail: TailDates | None  # None: the tail was not read


def stream_and_date(value: bytes | None) -> tuple[str, str] | None:
    """The stream name and ISO date of a day event's bytes; None when it has no valid pair.

    A peek, not the day event's decoder (``EventDecoder``): a record counts for
    freshness by its stream and date alone, whatever its slots hold or lack, and
    a timestamp's date part counts (tests/unit/test_lag_status.py holds both);
    the typed decoder would refuse such records, and it needs the configuration."""
    try:
        payload = decode_payload(value)
    except InvalidEvent:
        return None
    if not isinstance(payload, dict):
        return None
    stream, date = payload.get("stream"), payload.get("date")
    if not isinstance(stream, str) or not isinstance(date, str) or not STREAM_NAME.fullmatch(stream):
        return None
    try:
        return stream, dt.date.fromisoformat(date[:10]).isoformat()
    except ValueError:
        return None


def compute_lag(group: str, topic: str, committed: Mapping[int, int | None],
                earliest: Mapping[int, int], end: Mapping[int, int],
                members: int | None = None) -> LagReport:
    """Lag per partition: end - committed; before any commit, end - earliest.

    ``end`` is the true end (see the module docstring). A committed offset
    beyond it cannot be right: the broker misreports its high watermark in
    both answers (seen for batches written by librdkafka clients on some
    brokers), or the topic was deleted and created again since the commit.
    The lag is then shown as 0 and the row says so plainly.
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
    return LagReport(group, tuple(rows), members)


def true_ends(listed: Mapping[int, int], fetched: Mapping[int, int | None]) -> dict[int, int]:
    """Per partition the larger of the ListOffsets end and the fetch high watermark."""
    return {p: max(end, fetched.get(p) or 0) for p, end in listed.items()}
