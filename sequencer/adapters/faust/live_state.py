"""The worker's stream states: a decoded cache over the table, seeded from checkpoints,
and the schedule of periodic JSON checkpoints.

No Faust here: the app passes in how to read a table value, so the logic is
tested with plain dicts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from sequencer.adapters.files.checkpoints import CheckpointStore, OlderCheckpoint
from sequencer.app.codecs import EventDecoder, decode_state
from sequencer.app.worker_view import SavedCheckpoint
from sequencer.domain import (
    DayEvent,
    SequencerConfig,
    StreamState,
    SequencerError,
    home_partition,
)

logger = logging.getLogger(__name__)

#: The worker's two Faust tables (rebuild and verify write and read their changelogs).
STATES_TABLE = "stream-states"
LAST_EVENTS_TABLE = "last-events"


class LiveStates:
    """Where the worker finds a stream's state: cache, then table, then checkpoint.

    A stream absent from the table but present in the checkpoint folder is
    seeded from its checkpoint (events at or before its last processed date are
    then skipped by the fold's step 0).
    """

    def __init__(self, config: SequencerConfig,
                 read_table: Callable[[str], bytes | None],
                 read_last_event: Callable[[str], bytes | None] = lambda stream: None,
                 seeds: dict[str, StreamState] | None = None,
                 tables_ready: Callable[[], bool] = lambda: True) -> None:
        self.config = config
        self._read_table = read_table
        #: False while the tables may be part restored (a rebalance, its recovery,
        #: before the first assignment): what the table holds then is served to
        #: whoever asks but never kept, see `get`.
        self.tables_ready = tables_ready
        self._read_last_event = read_last_event
        self._seeds = dict(seeds or {})
        self._cache: dict[str, StreamState] = {}
        self._last_events: dict[str, DayEvent] = {}
        # The last-events table holds encode_event's bytes: the typed decoder reads them
        # (the generic path only for a value its schema refuses, as for any record).
        self._decode_event = EventDecoder(config).decode
        self.seeded: list[str] = []

    def get(self, stream: str) -> StreamState | None:
        """The stream's state: the cached one, else resolved from table and seed (`_resolve`).

        A value resolved while the tables are not ready is returned but not
        cached: a view or a metrics scrape during a recovery would otherwise
        keep a value read from a half-restored changelog (or the checkpoint
        that looked newer than it), and the fold would go on from it once the
        recovery is done, skipping the days between (found by
        ``bench/chaos_loop.py``; tests/integration/test_streaming.py)."""
        state = self._cache.get(stream)
        if state is not None:
            return state
        if not self.tables_ready():
            return self._resolve(stream, report=False)[0]
        state, seeded = self._resolve(stream)
        # Kept, not popped: after a revocation drops the cache, a stream
        # that never reached the table is seeded again from the same file.
        if seeded and stream not in self.seeded:
            self.seeded.append(stream)
            logger.info("stream %s seeded from its checkpoint (last processed %s)",
                        stream, state.last_processed_date)
        if state is not None:
            self._cache[stream] = state
        return state

    def _resolve(self, stream: str, report: bool = True) -> tuple[StreamState | None, bool]:
        """The state `get` serves for an uncached ``stream``, and whether it is the seed.

        The table wins, unless it has no value, one it refuses, or one behind
        the checkpoint: checkpoints are written from states already in the
        changelog, so a table behind one lost records (a changelog cut short,
        a recovery that stopped early), and the checkpoint has seen more."""
        table = self._from_table(stream, report)
        seed = self._seeds.get(stream)
        if seed is None:
            return table, False
        if table is None:
            return seed, True
        if _progress(seed) > _progress(table):
            if report:
                logger.warning("table value of %s (last processed %s, %d events) is behind its checkpoint "
                               "(%s, %d events): the table lost records; the checkpoint is taken", stream,
                               table.last_processed_date, table.events_applied, seed.last_processed_date,
                               seed.events_applied)
            return seed, True
        return table, False

    def _from_table(self, stream: str, report: bool = True) -> StreamState | None:
        raw = self._read_table(stream)
        if raw is None:
            return None
        try:
            return decode_state(raw, self.config)
        except (ValueError, TypeError) as error:
            if report:
                logger.error("table value of %s refused (%s); falling back to its checkpoint", stream, error)
            return None

    def checkpoint_only(self) -> list[StreamState]:
        """The seeds `get` would serve in place of a table value (none, refused, or
        behind the seed), not in the cache yet: what `InputOffsets.learn` weighs
        against the partitions' committed offsets."""
        return [state for stream, state in self._seeds.items()
                if stream not in self._cache and self._resolve(stream, report=False)[1]]

    def last_event(self, stream: str) -> DayEvent | None:
        event = self._last_events.get(stream)
        if event is None:
            raw = self._read_last_event(stream)
            if raw is not None:
                try:
                    event = self._decode_event(raw)
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


def _progress(state: StreamState) -> tuple[str, int]:
    """How far a state has come: its last processed date, then its events applied."""
    return state.last_processed_date or "", state.events_applied


def changelog_partition(state: StreamState | None, stream: str, topic: str, partitions: int) -> int:
    """The stream's partition, of the events topic and of the tables' changelogs alike.

    The agent writes a stream's changelog record to the partition of its
    events; that is the partition of the state's ``source_offsets`` on
    ``topic``. Without source offsets, aiokafka's default partitioner."""
    if state is not None:
        home = home_partition(state.source_offsets, topic)
        if home is not None:
            return home
    from aiokafka.partitioner import murmur2

    return (murmur2(stream.encode()) & 0x7FFFFFFF) % partitions


class CheckpointSchedule:
    """Which states a periodic checkpoint round writes: the streams changed since
    the last round, every ``every_events`` applied events or ``every_seconds``.

    The bookkeeping (`note`, `due`, `take`, `settle`) runs on the event loop
    only; `save_round` touches nothing of it and is the part an executor
    thread runs, so a batch can be noted while a round's files are written
    (`CheckpointWriter`). `write` is the three in a row, for callers without
    a loop."""

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

    def take(self, states: dict[str, StreamState], force: bool = False) -> list[StreamState]:
        """The states this round writes (every one of ``states`` when ``force``, else the
        changed ones among them), in stream order; the round is counted from now.

        They leave the changed set now: a batch noted while the round writes
        marks its streams changed again for the next round. Changed streams
        absent from ``states`` (the worker's streams now) are not its to
        write and are forgotten."""
        streams = set(states) if force else self._dirty & set(states)
        self._dirty &= set(states)
        self._dirty -= streams
        self._events_since = 0
        self._last_at = self._clock()
        return [states[stream] for stream in sorted(streams)]

    def save_round(self, states: Iterable[StreamState],
                   still_owned: Callable[[StreamState], bool] = lambda state: True) -> "RoundResult":
        """Save each state unless its stream stopped being ``still_owned`` meanwhile.

        Reads and writes only the store (and the files): safe in a thread while
        the loop notes batches. Never raises for one file: a failure is logged
        and its stream returned in ``failed``."""
        written, refused, failed, skipped = [], [], [], []
        for state in states:
            if not still_owned(state):
                skipped.append(state.stream)
                continue
            try:
                self.store.save(state)
                written.append(state.stream)
            except OlderCheckpoint:  # logged by the store
                refused.append(state.stream)
            except (OSError, SequencerError) as error:
                failed.append(state.stream)
                logger.error("checkpoint of %s not written: %s", state.stream, error)
        return RoundResult(tuple(written), tuple(refused), tuple(failed), tuple(skipped))

    def settle(self, result: "RoundResult") -> None:
        """Count a finished round; its failed streams are changed again (the next round retries).

        ``last_written_at`` moves only when every file of the round was written
        (or refused as older than the file on disk): a round with failures
        leaves the age metric growing, and ``failures`` counts them."""
        self._dirty.update(result.failed)
        self.failures += len(result.failed)
        self.refused_older += len(result.refused)
        self.written += len(result.written)
        if (result.written or result.refused) and not result.failed:
            self.last_written_at = time.time()

    def write(self, states: dict[str, StreamState], force: bool = False) -> int:
        """One round in the caller's thread: `take`, `save_round`, `settle`; returns the files written."""
        result = self.save_round(self.take(states, force))
        self.settle(result)
        return len(result.written)


class RoundResult(NamedTuple):
    """The streams of one checkpoint round, by what became of their file."""

    written: tuple[str, ...]
    refused: tuple[str, ...]  # the file on disk holds a newer state
    failed: tuple[str, ...]  # not written (disk, permissions): changed again
    skipped: tuple[str, ...]  # no longer this worker's when its turn came


class CheckpointWriter:
    """Checkpoint rounds off the batch path, one at a time.

    `start_if_due` is what the batch path calls: it never waits; when the
    schedule is due and no round runs, it starts one as a task. A round
    (`write`) takes the states to write on the loop (``states()``: the
    streams this worker owns now; the values are immutable, so the
    snapshot is the states as the last committed batch left them), then
    writes their files in an executor, each only if ``owns(stream)`` still
    holds for its state when its turn comes (a revocation meanwhile drops it). Rounds are
    serialised by a lock, so two saves of one file never race (the store's
    older-state check and its rename are not atomic together) and a later
    round, which took later states, always writes after an earlier one.
    A revocation or a stop awaits `write` and so waits for the round in flight.
    `save_now` (``POST /streams/{s}/checkpoint``) is a round of one stream under
    the same lock and rules."""

    def __init__(self, schedule: CheckpointSchedule, states: Callable[[], dict[str, StreamState]],
                 owns: Callable[[StreamState], bool]) -> None:
        self.schedule = schedule
        self._states = states
        self._owns = owns
        self._lock = asyncio.Lock()
        self._running: asyncio.Task | None = None

    def start_if_due(self) -> bool:
        """Start a round in the background when one is due and none runs; True if it started."""
        if self._running is not None and not self._running.done():
            return False
        if not self.schedule.due():
            return False
        self._running = asyncio.ensure_future(self.write())
        self._running.add_done_callback(_log_round_failure)
        return True

    async def write(self, force: bool = False) -> int:
        """Run one round now (after the one in flight); returns the files written."""
        async with self._lock:
            todo = self.schedule.take(self._states(), force)
            if not todo:
                return 0
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(None, self.schedule.save_round, todo, self._owns)
            self.schedule.settle(result)
        if result.written:
            logger.info("checkpoints written for %d streams to %s", len(result.written),
                        self.schedule.store.folder)
        if result.skipped:
            logger.info("checkpoints of %d streams not written: their partitions were revoked "
                        "during the round", len(result.skipped))
        return len(result.written)

    async def save_now(self, stream: str) -> SavedCheckpoint | None:
        """Write one stream's checkpoint now, as a round would; None when it is not this worker's.

        Under the rounds' lock, so after the round in flight and before the
        next one: the state is taken when its turn comes (never older than
        what an earlier round wrote) and saved only if ``owns`` still holds
        for it in the executor. Raises what the store's ``save`` raises:
        `OlderCheckpoint` when the file holds a newer state, `OSError` or
        `CheckpointError` when it cannot be written. The schedule's counters
        are left alone: they count the periodic rounds."""
        async with self._lock:
            state = self._states().get(stream)
            if state is None:
                return None
            loop = asyncio.get_running_loop()
            path = await loop.run_in_executor(None, self._save_if_owned, state)
        return None if path is None else SavedCheckpoint(state, path)

    def _save_if_owned(self, state: StreamState) -> Path | None:
        return self.schedule.store.save(state) if self._owns(state) else None

    async def idle(self) -> None:
        """Wait for the round in flight, if any (its failure is logged, not raised)."""
        if self._running is not None:
            await asyncio.wait([self._running])


def _log_round_failure(task: "asyncio.Task[int]") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("checkpoint round failed", exc_info=task.exception())
