"""The worker's stream states: a decoded cache over the table, seeded from checkpoints,
and the schedule of periodic JSON checkpoints.

No Faust here: the app passes in how to read a table value, so the logic is
tested with plain dicts.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Callable, Iterable

from sequencer.adapters.files.checkpoints import CheckpointStore, OlderCheckpoint
from sequencer.app.codecs import decode_payload, encode_event
from sequencer.domain import (
    DayEvent,
    SequencerConfig,
    StreamState,
    SequencerError,
    offsets_in_topic,
    parse_day_event,
    state_from_dict,
    state_to_dict,
)

logger = logging.getLogger(__name__)

#: The worker's two Faust tables (rebuild and verify write and read their changelogs).
STATES_TABLE = "stream-states"
LAST_EVENTS_TABLE = "last-events"


def encode_state(state: StreamState) -> bytes:
    """The table value: the SPEC 4 state JSON."""
    return json.dumps(state_to_dict(state), separators=(",", ":"), allow_nan=False).encode()


def decode_state(data: bytes, config: SequencerConfig) -> StreamState:
    return state_from_dict(json.loads(data), config)


class LiveStates:
    """Where the worker finds a stream's state: cache, then table, then checkpoint.

    A stream absent from the table but present in the checkpoint folder is
    seeded from its checkpoint (events at or before its last processed date are
    then skipped by the fold's step 0).
    """

    def __init__(self, config: SequencerConfig,
                 read_table: Callable[[str], bytes | None],
                 read_last_event: Callable[[str], bytes | None] = lambda stream: None,
                 seeds: dict[str, StreamState] | None = None) -> None:
        self.config = config
        self._read_table = read_table
        self._read_last_event = read_last_event
        self._seeds = dict(seeds or {})
        self._cache: dict[str, StreamState] = {}
        self._last_events: dict[str, DayEvent] = {}
        self.seeded: list[str] = []

    def get(self, stream: str) -> StreamState | None:
        state = self._cache.get(stream)
        if state is not None:
            return state
        raw = self._read_table(stream)
        if raw is not None:
            try:
                state = decode_state(raw, self.config)
            except (ValueError, TypeError) as error:
                logger.error("table value of %s refused (%s); falling back to its checkpoint", stream, error)
                state = None
        if state is None:
            # Kept, not popped: after a revocation drops the cache, a stream
            # that never reached the table is seeded again from the same file.
            state = self._seeds.get(stream)
            if state is not None and stream not in self.seeded:
                self.seeded.append(stream)
                logger.info("stream %s seeded from its checkpoint (last processed %s)",
                            stream, state.last_processed_date)
        if state is not None:
            self._cache[stream] = state
        return state

    def last_event(self, stream: str) -> DayEvent | None:
        event = self._last_events.get(stream)
        if event is None:
            raw = self._read_last_event(stream)
            if raw is not None:
                try:
                    event = parse_day_event(decode_payload(raw), self.config)
                except ValueError:
                    return None
                self._last_events[stream] = event
        return event

    def put(self, stream: str, state: StreamState, last_event: DayEvent | None = None) -> None:
        self._cache[stream] = state
        if last_event is not None:
            self._last_events[stream] = last_event

    def cached(self) -> dict[str, StreamState]:
        return dict(self._cache)

    def drop(self, stream: str) -> None:
        """Take the stream out of the cache (its partition was revoked); its seed stays."""
        self._cache.pop(stream, None)
        self._last_events.pop(stream, None)

    def forget(self, stream: str | None = None) -> None:
        """Drop cached values (all on a rebalance: another worker may own them now)."""
        if stream is None:
            self._cache.clear()
            self._last_events.clear()
        else:
            self._cache.pop(stream, None)
            self._last_events.pop(stream, None)
            self._seeds.pop(stream, None)


def encode_last_event(event: DayEvent) -> bytes:
    return encode_event(event)


def changelog_partition(state: StreamState | None, stream: str, topic: str, partitions: int) -> int:
    """The stream's partition, of the events topic and of the tables' changelogs alike.

    The agent writes a stream's changelog record to the partition of its
    events; that is the partition of the state's ``source_offsets`` on
    ``topic``. Without source offsets, aiokafka's default partitioner."""
    if state is not None:
        for partition in offsets_in_topic(state.source_offsets, topic):
            return partition
    from aiokafka.partitioner import murmur2

    return (murmur2(stream.encode()) & 0x7FFFFFFF) % partitions


class CheckpointSchedule:
    """Writes changed states every ``every_events`` applied events or ``every_seconds``."""

    def __init__(self, store: CheckpointStore, every_events: int, every_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.every_events = every_events
        self.every_seconds = every_seconds
        self._clock = clock
        self._dirty: set[str] = set()
        self._events_since = 0
        self._last_at = clock()
        self.written = 0
        self.failures = 0  # files that could not be written (disk, permissions)
        self.refused_older = 0  # files not replaced: the one on disk is newer
        self.last_written_at: float | None = None

    def note(self, streams: Iterable[str], applied: int) -> None:
        self._dirty.update(streams)
        self._events_since += applied

    def due(self) -> bool:
        if not self._dirty:
            return False
        return (self._events_since >= self.every_events
                or self._clock() - self._last_at >= self.every_seconds)

    def write(self, states: dict[str, StreamState], force: bool = False) -> int:
        """Write the changed streams' states (all of ``states`` when ``force``); returns how
        many files were written.

        ``last_written_at`` moves only when every file of the round was written
        (or refused as older than the file on disk): a round with failures
        leaves the age metric growing, and ``failures`` counts them."""
        streams = set(states) if force else self._dirty & set(states)
        count = failed = 0
        for stream in sorted(streams):
            try:
                self.store.save(states[stream])
                count += 1
            except OlderCheckpoint:  # logged by the store
                self.refused_older += 1
            except (OSError, SequencerError) as error:
                failed += 1
                logger.error("checkpoint of %s not written: %s", stream, error)
                continue
            self._dirty.discard(stream)
        self._events_since = 0
        self._last_at = self._clock()
        self.failures += failed
        if streams and not failed:
            self.last_written_at = time.time()
        self.written += count
        return count
