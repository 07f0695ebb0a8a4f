"""The records the application exchanges with the event log: one read (`SourceRecord`),
one refused (`DeadLetter`). Plain values, no client: the Faust worker, the log reader and
the tests build them; the processor folds them; the codecs encode dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass

from sequencer.domain import partition_key


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One record as read from the event topic."""

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
        return partition_key(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: SourceRecord
    reason: str
    stream: str | None = None
