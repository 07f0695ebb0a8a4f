"""Folding a batch of raw event records: decode, validate, order, apply.

Knows records (topic, partition, offset, bytes) but not Kafka clients: the
Faust agent feeds it and publishes what it returns. Per SPEC 5 step 0 and for
at-least-once delivery it tells apart

- a *redelivery*: the record's offset is below the ``source_offsets`` the
  stream's state already holds for that partition, so it was applied (and its
  decision flushed) before a crash; skipped silently, counted;
- a *duplicate*: a new record for the last processed date; skipped and counted
  when its payload equals the applied one, dead-lettered when it differs;
- *out of order*: a date before the last processed date; dead-lettered;
- *another partition*: a record of a stream whose state was folded from
  another partition of the topic (`domain.home_partition`); dead-lettered.
  A stream spread over partitions has no order (Kafka orders a partition, not
  a topic), its changelog records would land in two partitions (a restore
  then takes either), and two workers would each fold a part of it.

A record below the state's offset whose date is *after* the last processed
date cannot be a redelivery: the log was replaced (a recreated topic, a fresh
in-memory broker). The stale offset is dropped and the event folded.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from sequencer.app.clock import latest_event_date_now
from sequencer.app.codecs import DEFAULT_MAX_EVENT_BYTES, EventDecoder
from sequencer.app.records import DeadLetter, SourceRecord
from sequencer.domain import (
    DayEvent,
    Decision,
    InvalidEvent,
    SequencerConfig,
    StreamState,
    apply_day,
    home_partition,
    initial_state,
)
from sequencer.domain.events import latest_event_date
from sequencer.domain.errors import shown
from sequencer.domain.step_zero import step_zero

logger = logging.getLogger(__name__)


@dataclass
class BatchOutcome:
    """What a batch produced: publish ``decisions``, then write ``states`` back."""

    decisions: list[Decision] = field(default_factory=list)
    states: dict[str, StreamState] = field(default_factory=dict)
    last_events: dict[str, DayEvent] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    partition_of: dict[str, int] = field(default_factory=dict)  # stream -> partition of its last record


@dataclass
class ProcessingCounters:
    """Running totals since the worker started, for logs, HTTP and metrics."""

    records: int = 0
    applied: int = 0
    redelivered: int = 0
    replaced_offsets: int = 0  # state offsets dropped as belonging to a replaced log
    duplicates: int = 0
    dead_letters: int = 0
    dead_letter_reasons: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"records": self.records, "applied": self.applied, "redelivered": self.redelivered,
                "replaced_offsets": self.replaced_offsets, "duplicates": self.duplicates,
                "dead_letters": self.dead_letters,
                "dead_letter_reasons": dict(self.dead_letter_reasons)}


def reason_kind(reason: str) -> str:
    """A short label for counting dead letters by kind ("out of order", "bad result", ...)."""
    head = reason.split(":")[0]
    for kind in ("wrong partition", "no key", "malformed msgpack", "malformed JSON", "out of order", "duplicate", "unknown instrument",
                 "unknown session", "unknown slot", "bad result", "exceeds the limit", "stream name",
                 "missing or malformed stream", "missing or malformed date", "malformed date",
                 "in the future", "beyond the limit", "disagree", "unexpected error"):
        if kind in reason:
            return kind
    return head[:40]


_MS_PER_DAY = 86_400_000
_EPOCH = _dt.date(1970, 1, 1)
_LATEST_BY_DAY: dict[int, str] = {}  # days since the epoch -> latest accepted date; a few hundred at most


def _latest_for(timestamp_ms: int | None, latest_now: str | None) -> str | None:
    """The latest date a record may carry: by the day it was produced, never after ``latest_now``."""
    if latest_now is None or not timestamp_ms or timestamp_ms <= 0:
        return latest_now
    day = timestamp_ms // _MS_PER_DAY
    latest = _LATEST_BY_DAY.get(day)
    if latest is None:
        try:
            latest = latest_event_date(_EPOCH + _dt.timedelta(days=day))
        except OverflowError:  # a timestamp past year 9999 says nothing
            return latest_now
        if len(_LATEST_BY_DAY) < 100_000:
            _LATEST_BY_DAY[day] = latest
    return min(latest, latest_now)


def _overlaid(first: dict, then: Callable[[str], object]) -> Callable[[str], object]:
    """A lookup that reads ``first`` and, for a stream not in it, ``then``."""
    def lookup(stream: str) -> object:
        found = first.get(stream)
        return found if found is not None else then(stream)
    return lookup


def unkeyed_reason(record: SourceRecord, stream: str, partitions: int) -> str:
    """Why a record without a key is not folded from a topic of several partitions.

    No partitioner keeps a stream in one partition without its key: the
    sticky partitioner of librdkafka and the Java client moves on with each
    batch, others draw one at random. Refused on every partition alike, so
    each worker of a group, and a rebuild of the log, refuses the same records
    (a stream's home partition, `wrong_partition_reason`, is only known once
    it has a state, and two workers would each start one)."""
    return (f"no key: {stream} arrived without a key on partition {record.partition} of {record.topic}, a topic "
            f"of {partitions} partitions, where a stream without its key is spread over the partitions; key "
            f"every record by its stream name")


def wrong_partition_reason(record: SourceRecord, stream: str, home: int) -> str:
    """Why a record of ``stream`` from a partition other than ``home`` is not folded."""
    unkeyed = " (this record has no key)" if not record.key else ""
    return (f"wrong partition: {stream} arrived on partition {record.partition} of {record.topic}{unkeyed}, "
            f"but its state was folded from partition {home}; one stream's events must all be in one "
            f"partition: key every record by its stream name and let one partitioner place it")


class EventProcessor:
    """Applies batches of records on top of states it looks up through ``lookup``.

    ``latest_date`` gives, once per batch, the latest date an event may carry
    (SPEC 3's future-date rule); the default reads the UTC clock, a test
    passes its own. A record with a timestamp is judged against the day it was
    produced when that is earlier: the outcome is then a function of the log
    alone, and a rebuild next month refuses what the worker refused today.
    """

    def __init__(self, config: SequencerConfig,
                 lookup_state: Callable[[str], StreamState | None],
                 lookup_last_event: Callable[[str], DayEvent | None] = lambda stream: None,
                 max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 latest_date: Callable[[], str | None] = latest_event_date_now,
                 partitions: int | None = None) -> None:
        self.config = config
        #: The events topic's partition count, when known: on a topic of more than
        #: one, a record without a key is dead-lettered (`unkeyed_reason`).
        self.partitions = partitions
        #: stream -> home partition, for streams that have no state here yet but
        #: one elsewhere: a fold of the log from its start (verify, rebuild) takes
        #: the worker's, which a checkpoint says, rather than whichever partition
        #: it happens to read first.
        self.homes: dict[str, int] = {}
        self._lookup_state = lookup_state
        self._lookup_last_event = lookup_last_event
        self.max_event_bytes = max_event_bytes
        self._decoder = EventDecoder(config, max_event_bytes)
        self._latest_date = latest_date
        self.counters = ProcessingCounters()

    def decode(self, record: SourceRecord, latest_date: str | None) -> DayEvent:
        """The record's day event, or ``InvalidEvent`` with the reason to dead-letter it.

        Whatever the bytes: an error the validation did not foresee is still
        this record's error (logged with its traceback), never the batch's.
        """
        try:
            return self._decoder.decode(record.value, latest_date)
        except InvalidEvent:
            raise
        except Exception as error:  # noqa: BLE001 - one record must not stop the worker
            raise self._unexpected(record, error) from None

    @staticmethod
    def _unexpected(record: SourceRecord, error: Exception) -> InvalidEvent:
        """The record's refusal for an error its validation did not foresee (logged with the traceback)."""
        logger.exception("unexpected error decoding %s offset %d", record.partition_key, record.offset)
        return InvalidEvent(f"unexpected error decoding the event: {type(error).__name__}")

    def process(self, records: Iterable[SourceRecord], after: BatchOutcome | None = None) -> BatchOutcome:
        """Fold ``records`` on top of the states looked up, or, given ``after``, on top of
        that batch's states and last events first: a batch folded while the one before it
        is still being committed (`sequencer.app.batch_pipeline`) continues from it."""
        out = BatchOutcome()
        lookup_state = self._lookup_state if after is None else _overlaid(after.states, self._lookup_state)
        lookup_last_event = (self._lookup_last_event if after is None
                             else _overlaid(after.last_events, self._lookup_last_event))
        states = out.states
        offsets: dict[str, dict[str, int]] = {}
        config = self.config
        counters = self.counters
        latest_now = self._latest_date()
        decode_value = self._decoder.decode  # self.decode, inlined: one call less a record
        for record in records:
            counters.records += 1
            latest_date = _latest_for(record.timestamp_ms, latest_now)
            try:
                event = decode_value(record.value, latest_date)
            except InvalidEvent as error:
                self._dead_letter(out, record, error.reason, None)
                continue
            except Exception as error:  # noqa: BLE001 - one record must not stop the worker
                self._dead_letter(out, record, self._unexpected(record, error).reason, None)
                continue
            stream = event.stream
            if record.key:
                if record.key != stream.encode():
                    self._dead_letter(out, record, f"record key {shown(record.key)} is not the stream name {stream}",
                                      stream)
                    continue
            elif self.partitions is not None and self.partitions > 1:
                self._dead_letter(out, record, unkeyed_reason(record, stream, self.partitions), stream)
                continue
            state = states.get(stream)
            if state is None:
                state = lookup_state(stream) or initial_state(stream, config)
            tp = record.partition_key
            # The batch's offsets of the stream (they start as its state's), else its state's.
            known = offsets.get(stream) or state.source_offsets
            if known:
                if next(iter(known)) != tp:  # one dict lookup when the partition is the home one
                    home = home_partition(known, record.topic)
                    if home is not None and home != record.partition:
                        self._dead_letter(out, record, wrong_partition_reason(record, stream, home), stream)
                        continue
            elif self.homes:
                home = self.homes.get(stream)
                if home is not None and home != record.partition:
                    self._dead_letter(out, record, wrong_partition_reason(record, stream, home), stream)
                    continue
            out.partition_of[stream] = record.partition
            next_offset = state.source_offsets.get(tp)
            if next_offset is not None and record.offset < next_offset:
                last = state.last_processed_date
                if last is not None and event.date <= last:
                    counters.redelivered += 1
                    continue
                # Every record of the state's log below its offset was handled,
                # and last_processed_date only grows, so a later date cannot
                # come from that log: the offset belongs to a log that is gone
                # (topic recreated, an in-memory broker started afresh).
                # Forget it and fold the event.
                state = self._forget_offset(stream, state, tp, offsets, record.offset)
            # Only an event for the last processed date is compared with the applied one.
            applied = (out.last_events.get(stream) or lookup_last_event(stream)
                       if event.date == state.last_processed_date else None)
            skip = step_zero(state, event, applied)
            if skip is not None:
                if skip.reason is None:
                    counters.duplicates += 1
                else:
                    self._dead_letter(out, record, skip.reason, stream)
                self._remember_offset(offsets, stream, state, tp, record.offset)
                continue
            new_state, decision = apply_day(state, event, config)
            states[stream] = new_state
            out.last_events[stream] = event
            out.decisions.append(decision)
            counters.applied += 1
            self._remember_offset(offsets, stream, state, tp, record.offset)
        for stream, stream_offsets in offsets.items():
            state = states.get(stream)
            if state is None:  # only skipped records: the offsets still move on
                state = lookup_state(stream) or initial_state(stream, config)
            states[stream] = state.with_source_offsets(stream_offsets)
        return out

    def _forget_offset(self, stream: str, state: StreamState, tp: str,
                       offsets: dict[str, dict[str, int]], offset: int) -> StreamState:
        logger.warning("%s: offset %d of %s is before the state's next offset %d but its date is new; "
                       "the state's offset is from a replaced log and is dropped",
                       stream, offset, tp, state.source_offsets[tp])
        self.counters.replaced_offsets += 1
        if stream in offsets:
            offsets[stream].pop(tp, None)
        return state.with_source_offsets({k: v for k, v in state.source_offsets.items() if k != tp})

    @staticmethod
    def _remember_offset(offsets: dict[str, dict[str, int]], stream: str, state: StreamState,
                         tp: str, offset: int) -> None:
        stream_offsets = offsets.get(stream)
        if stream_offsets is None:
            stream_offsets = offsets[stream] = dict(state.source_offsets)
        if offset + 1 > stream_offsets.get(tp, -1):
            stream_offsets[tp] = offset + 1

    def _dead_letter(self, out: BatchOutcome, record: SourceRecord, reason: str, stream: str | None) -> None:
        out.dead_letters.append(DeadLetter(record, reason, stream))
        self.counters.dead_letters += 1
        self.counters.dead_letter_reasons[reason_kind(reason)] += 1
