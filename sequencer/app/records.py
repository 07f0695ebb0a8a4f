"""The records the application exchanges with the event log: one read (`SourceRecord`),
one refused (`DeadLetter`). Plain values, no client: the Faust worker, the log reader and
the tests build them; the processor folds them; the codecs encode dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Iterable, NamedTuple

from sequencer.domain import partition_key

#: A batch names the same few partitions thousands of times.
_partition_key = lru_cache(maxsize=4096)(partition_key)


class SourceRecord(NamedTuple):
    """One record as read from the event topic.

    A NamedTuple, immutable like a frozen dataclass: the worker builds one per
    record it reads, and a frozen dataclass's ``__init__`` (a guarded
    ``setattr`` per field) cost about twice as much."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    #: The record's Kafka timestamp (ms since the epoch; None or <= 0: unknown).
    #: The future-date rule judges an event against the day it was produced, so
    #: the worker and a later rebuild of the same log refuse the same records.
    timestamp_ms: int | None = None

    @property
    def partition_key(self) -> str:
        return _partition_key(self.topic, self.partition)


_TOPIC_PARTITION = itemgetter(0, 1)  # SourceRecord's topic and partition


def partitions_of(records: Iterable[SourceRecord]) -> set[str]:
    """The ``topic:partition`` names ``records`` come from: one name per partition,
    not one per record (a batch holds thousands of records of a few partitions)."""
    return {_partition_key(topic, partition) for topic, partition in set(map(_TOPIC_PARTITION, records))}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: SourceRecord
    reason: str
    stream: str | None = None
