"""Verify: rebuild in memory from the log and diff against the live table and the checkpoints."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.adapters.files.checkpoints import CheckpointStore, stream_of_file
from sequencer.domain import InvalidState, SequencerConfig, StreamState, offsets_in_topic, state_to_dict
from sequencer.adapters.faust.live_state import STATES_TABLE
from sequencer.app.codecs import decode_state
from sequencer.app.log_fold import LogFold, chosen_streams
from sequencer.adapters.kafka.log_reader import changelog_topic, read_changelog, read_topic

#: State fields not compared (when the file was written).
_IGNORED = {"saved_at"}


@dataclass
class Drift:
    stream: str
    where: str          # "table" or the checkpoint file
    field: str
    expected: Any
    found: Any

    def line(self) -> str:
        return f"{self.stream} {self.where}: {self.field} expected {_short(self.expected)} found {_short(self.found)}"


@dataclass
class Behind:
    """A checkpoint consistent with the log, but at an earlier position than the log's end."""

    stream: str
    where: str      # the checkpoint file
    events: int     # events on the log after the checkpoint's position
    partition: int
    offset: int

    def line(self) -> str:
        return (f"{self.stream} {self.where}: {self.events} events behind the log (consistent with the log "
                f"at offset {self.offset} of partition {self.partition})")


@dataclass
class VerifyResult:
    streams: list[str]
    drift: list[Drift]
    notes: list[str]
    records_read: int
    seconds: float
    behind: list[Behind] = field(default_factory=list)


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit - 3] + "..."


def diff_states(stream: str, where: str, expected: StreamState | None, found: StreamState | None) -> list[Drift]:
    if expected is None and found is None:
        return []
    if expected is None:
        return [Drift(stream, where, "state", "absent (no event on the log)", "present")]
    if found is None:
        return [Drift(stream, where, "state", "present", "absent")]
    a, b = state_to_dict(expected), state_to_dict(found)
    out = []
    for key in sorted(set(a) | set(b)):
        if key in _IGNORED:
            continue
        if a.get(key) != b.get(key):
            out.append(Drift(stream, where, key, a.get(key), b.get(key)))
    return out


async def verify(settings: Any, config: SequencerConfig, store: CheckpointStore, *,
                 streams: Iterable[str] | None = None,
                 on_total: Callable[[int], None] | None = None,
                 on_progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Rebuild in memory from the log; diff against the live table and the checkpoints.

    The table must equal the state at the end of the log. A checkpoint must
    equal the log's state at its own position (its ``source_offsets``): one
    written earlier than the last event is consistent, not drift, but it is
    behind (``VerifyResult.behind``): a restart from it would fold that tail
    again, and after a clean stop of every worker it means a write was lost.
    """
    started = time.perf_counter()
    security = KafkaConnection.of(settings).aiokafka_kwargs()
    topic = settings.topic_events
    wanted = set(streams) if streams else None
    notes: list[str] = []
    drift: list[Drift] = []
    behind: list[Behind] = []

    loaded, refused = store.load_all()
    for error in refused:
        stream = stream_of_file(error.path) or error.path.name
        if wanted is None or stream in wanted:
            drift.append(Drift(stream, str(error.path), "file", "a valid checkpoint", f"refused: {error.problem}"))
    snapshots_at: dict[tuple[int, int], list[str]] = {}
    positions: dict[str, tuple[int, int] | None] = {}
    for stream, cp in loaded.items():
        mine = list(offsets_in_topic(cp.state.source_offsets, topic).items())
        positions[stream] = mine[0] if len(mine) == 1 else None
        if len(mine) == 1:
            snapshots_at.setdefault(mine[0], []).append(stream)

    fold = LogFold(config, topic, max_event_bytes=settings.max_event_bytes, snapshots_at=snapshots_at)
    fold.known_homes(cp.state for cp in loaded.values())

    def take(records: list) -> None:
        fold.feed(records)
        if on_progress is not None:
            on_progress(len(records))

    read, table = await asyncio.gather(
        read_topic(settings.bootstrap_servers, topic, take, security=security, on_total=on_total,
                   on_partitions=fold.topic_partitions),
        read_changelog(settings.bootstrap_servers, changelog_topic(settings.app_id, STATES_TABLE), security))
    if not read.exists:
        notes.append(f"event topic {topic} does not exist: the log is empty")
    if read.deleted:
        notes.append(f"records were deleted by the broker (retention or DeleteRecords): {read.deleted_text(topic)}; "
                     "the fold of what is left misses them, so the streams of those partitions drift from it")
    if not table.exists:
        notes.append(f"changelog {table.topic} does not exist: the table is empty (no worker ran?)")

    if fold.dead_letter_reasons:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(fold.dead_letter_reasons.items()))
        notes.append(f"{sum(fold.dead_letter_reasons.values())} records of the log are dead letters, "
                     f"not applied (as the worker does): {kinds}")
    chosen = chosen_streams(streams, fold.states, table.streams(), loaded)
    for stream in chosen:
        expected = fold.states.get(stream)
        live = table.live(stream)
        if len(live) > 1:
            drift.append(Drift(stream, "table", "partitions", "one changelog partition",
                               f"values in partitions {sorted(live)}"))
        home = fold.partition_of.get(stream)
        raw = live.get(home) if home in live else (next(iter(live.values())) if live else None)
        if expected is not None and live and home not in live:
            drift.append(Drift(stream, "table", "partition", home, sorted(live)))
        found = None
        if raw is not None:
            try:
                found = decode_state(raw, config)
            except (ValueError, TypeError, InvalidState) as error:
                drift.append(Drift(stream, "table", "value", "a valid state", f"undecodable: {error}"))
                raw = None
        if raw is not None or expected is not None:
            drift.extend(diff_states(stream, "table", expected, found))
        cp = loaded.get(stream)
        if cp is None:
            if expected is not None:
                notes.append(f"{stream}: no checkpoint file yet")
            continue
        where = f"checkpoint {cp.path}"
        position = positions.get(stream)
        if position is not None and stream in fold.snapshots:
            at = fold.snapshots[stream]
            drift.extend(diff_states(stream, where, at, cp.state))
            if at is not None and expected is not None and at.events_applied != expected.events_applied:
                behind.append(Behind(stream, where, expected.events_applied - at.events_applied,
                                     position[0], position[1]))
        elif position is not None:
            drift.append(Drift(stream, where, "source_offsets", "a position the log reached",
                               dict(cp.state.source_offsets)))
        else:
            drift.extend(diff_states(stream, where, expected, cp.state))
    return VerifyResult(chosen, drift, notes, read.records, time.perf_counter() - started, behind)
