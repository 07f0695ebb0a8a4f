"""Folding event-topic records read straight from the log, with the worker's own code path."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from sequencer.domain import DayEvent, InvalidEvent, SequencerConfig, StreamState, home_partition, offsets_in_topic
from sequencer.app.processor import EventProcessor, reason_kind
from sequencer.app.records import SourceRecord

#: Records handed to the processor at a time.
FOLD_CHUNK = 5000


def _source_record(record: Any) -> SourceRecord:
    """An aiokafka ``ConsumerRecord`` (timestamp in ms) as the processor's record; a
    ``SourceRecord`` as it is."""
    if isinstance(record, SourceRecord):
        return record
    return SourceRecord(record.topic, record.partition, record.offset, record.key, record.value,
                        record.timestamp)


class LogFold:
    """Folds event-topic records with the worker's `EventProcessor`.

    ``states``/``last_events`` may be seeded (from checkpoints). ``as_of``: day
    events dated after it are not applied (as ``sequencer replay --until``).
    ``snapshots_at``: (partition, next offset) -> streams whose state to copy
    once the fold has gone exactly that far (verify compares checkpoints there).
    """

    def __init__(self, config: SequencerConfig, topic: str, *, max_event_bytes: int,
                 states: Mapping[str, StreamState] | None = None,
                 last_events: Mapping[str, DayEvent] | None = None,
                 as_of: str | None = None,
                 snapshots_at: Mapping[tuple[int, int], list[str]] | None = None) -> None:
        self.config = config
        self.topic = topic
        self.states: dict[str, StreamState] = dict(states or {})
        self.last_events: dict[str, DayEvent] = dict(last_events or {})
        self.as_of = as_of
        self.max_event_bytes = max_event_bytes
        self.processor = EventProcessor(config, self.states.get, self.last_events.get, max_event_bytes)
        self.partition_of: dict[str, int] = {}
        for stream, state in self.states.items():
            parts = list(offsets_in_topic(state.source_offsets, topic))
            if len(parts) == 1:
                self.partition_of[stream] = parts[0]
        self.snapshots_at = dict(snapshots_at or {})
        self.snapshots: dict[str, StreamState | None] = {}
        self.decisions = 0
        self.decisions_by_stream: dict[str, int] = {}
        self.after_as_of = 0
        self.dead_letter_reasons: dict[str, int] = {}

    def known_homes(self, states: Iterable[StreamState]) -> None:
        """Take the home partitions of ``states`` (the worker's checkpoints) for the streams
        this fold starts without a state: a stream spread over partitions is then refused
        where the worker refused it, whichever partition the read brings first."""
        for state in states:
            home = home_partition(state.source_offsets, self.topic)
            if home is not None:
                self.processor.homes[state.stream] = home

    def topic_partitions(self, count: int) -> None:
        """The topic's partition count, before its records: the worker's rule for records
        without a key depends on it (`processor.unkeyed_reason`)."""
        self.processor.partitions = count

    def feed(self, records: Iterable[Any]) -> None:
        chunk: list[SourceRecord] = []
        for record in records:
            source = _source_record(record)
            if self.as_of is not None and self._after_as_of(source):
                self.after_as_of += 1
                continue
            chunk.append(source)
            if self.snapshots_at and (source.partition, source.offset + 1) in self.snapshots_at:
                self._process(chunk)
                chunk = []
                for stream in self.snapshots_at[(source.partition, source.offset + 1)]:
                    self.snapshots[stream] = self.states.get(stream)
            elif len(chunk) >= FOLD_CHUNK:
                self._process(chunk)
                chunk = []
        if chunk:
            self._process(chunk)

    def _after_as_of(self, record: SourceRecord) -> bool:
        try:
            event = self.processor.decode(record, None)
        except InvalidEvent:
            return False  # the processor dead-letters it
        return event.date > self.as_of

    def _process(self, records: list[SourceRecord]) -> None:
        outcome = self.processor.process(records)
        dead = {(d.record.partition, d.record.offset) for d in outcome.dead_letters}
        for record in records:
            if record.key and (record.partition, record.offset) not in dead:
                self.partition_of[record.key.decode(errors="replace")] = record.partition
        self.states.update(outcome.states)
        self.last_events.update(outcome.last_events)
        self.decisions += len(outcome.decisions)
        for decision in outcome.decisions:
            self.decisions_by_stream[decision.stream] = self.decisions_by_stream.get(decision.stream, 0) + 1
        for letter in outcome.dead_letters:
            kind = reason_kind(letter.reason)
            self.dead_letter_reasons[kind] = self.dead_letter_reasons.get(kind, 0) + 1


def chosen_streams(streams: Iterable[str] | None, *candidates: Iterable[str]) -> list[str]:
    """``streams`` if named, else every stream any of the candidates knows, sorted."""
    if streams:
        return sorted(set(streams))
    found: set[str] = set()
    for group in candidates:
        found.update(group)
    return sorted(found)
