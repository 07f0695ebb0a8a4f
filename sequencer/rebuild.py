"""Rebuild and verify stream states from the event log (no argparse here).

The event topic is the source of truth. A rebuild reads it with aiokafka,
folds it with `EventProcessor` (the worker's own code path: decode, validate,
order, redelivery and duplicate rules), and then, stop-the-world (the worker is
not running), replaces the worker's table state by writing records straight to
the Faust changelog topics, and writes fresh checkpoints.

Where the worker would look:

- table ``stream-states``: changelog ``{app_id}-stream-states-changelog``,
  key = stream name bytes, value = SPEC 4 state JSON bytes (None = deleted);
- table ``last-events``: changelog ``{app_id}-last-events-changelog``, value =
  msgpack of the last applied day event (the duplicate-payload check);
- a worker owning event partition p restores changelog partition p only, so a
  stream's records go to the partition of its events. A stale value of the
  stream in any other changelog partition gets a tombstone.

End of a partition: Tansu's ListOffsets end offset is short by (records in
the last batch - 1), so it is not trusted as "done". A partition is read until
the position reaches the high watermark carried by the *fetch* responses
(correct on Tansu and Kafka) and the ListOffsets end, whichever is larger.

Every changelog record is produced and acknowledged on its own, so it is its
own batch on the broker and even a reader trusting ListOffsets (Faust's table
recovery does) sees all of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from .checkpoints import CheckpointStore
from .codecs import decode_payload, encode_event
from .domain import (
    DayEvent,
    InvalidEvent,
    InvalidState,
    SequencerConfig,
    SequencerError,
    StreamState,
    offsets_in_topic,
    parse_day_event,
    state_to_dict,
)
from .live_state import decode_state, encode_state
from .processor import EventProcessor, SourceRecord, reason_kind

logger = logging.getLogger(__name__)

STATES_TABLE = "stream-states"
LAST_EVENTS_TABLE = "last-events"

#: Records handed to the processor at a time.
FOLD_CHUNK = 5000
#: How long an empty poll waits (ms) while partitions are not yet caught up.
POLL_MS = 100


class RebuildError(SequencerError):
    """A rebuild or verify cannot proceed (worker running, refused checkpoint...)."""


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's changelog topic of ``table`` in app ``app_id``."""
    return f"{app_id}-{table}-changelog"


# --- reading topics ---------------------------------------------------------------


@dataclass
class TopicRead:
    """What a read covered: partition -> first and next offset."""

    start: dict[int, int] = field(default_factory=dict)
    end: dict[int, int] = field(default_factory=dict)
    records: int = 0
    exists: bool = True


async def read_topic(bootstrap: str, topic: str, on_records: Callable[[list], None], *,
                     start_offsets: Mapping[int, int] | None = None,
                     only_partitions: Iterable[int] | None = None,
                     security: Mapping[str, Any] | None = None,
                     on_total: Callable[[int], None] | None = None,
                     timeout_s: float = 120.0) -> TopicRead:
    """Read ``topic`` from ``start_offsets`` (earliest for partitions not named) to its end.

    ``on_records`` receives lists of aiokafka ``ConsumerRecord``, in offset
    order per partition; ``only_partitions`` limits the read. ``on_total`` is told the estimated record count
    (from ListOffsets, a lower bound on Tansu) once it is known.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024, **dict(security or {}))
    await consumer.start()
    result = TopicRead()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            result.exists = False
            return result
        if only_partitions is not None:
            partitions = set(partitions) & set(only_partitions)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return result
        consumer.assign(tps)
        begin = await consumer.beginning_offsets(tps)
        listed_end = await consumer.end_offsets(tps)
        for tp in tps:
            start = begin[tp]
            if start_offsets and tp.partition in start_offsets:
                start = max(start, start_offsets[tp.partition])
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
                raise RebuildError(f"reading {topic}: partitions {sorted(tp.partition for tp in pending)} "
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


# --- folding ----------------------------------------------------------------------


def _source_record(record: Any) -> SourceRecord:
    return SourceRecord(record.topic, record.partition, record.offset, record.key, record.value)


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
            event = parse_day_event(decode_payload(record.value, self.max_event_bytes), self.config)
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


# --- rebuild ----------------------------------------------------------------------


@dataclass
class RebuildResult:
    states: dict[str, StreamState]
    streams: list[str]                  # the chosen streams, sorted
    records_read: int
    decisions: int
    dead_letters: dict[str, int]
    start_offsets: dict[int, int]
    end_offsets: dict[int, int]
    seconds: float
    written_records: int = 0
    tombstoned: list[str] = field(default_factory=list)
    checkpoint_folder: Path | None = None
    after_as_of: int = 0
    notes: list[str] = field(default_factory=list)


async def active_members(bootstrap: str, group: str, security: Mapping[str, Any] | None = None) -> list[str]:
    """Client ids of the consumer group's current members (empty when none or unknown)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **dict(security or {}))
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    members: list[str] = []
    for response in described:
        for entry in response.groups:
            # (error_code, group_id, state, protocol_type, protocol, members[, ...])
            if entry[1] == group and entry[0] == 0:
                members.extend(m[0] for m in entry[5])
    return members


async def refuse_if_worker_running(settings: Any) -> None:
    try:
        members = await active_members(settings.bootstrap_servers, settings.app_id,
                                       settings.aiokafka_security_kwargs())
    except Exception as error:  # noqa: BLE001 - cannot tell: say so, do not block
        logger.warning("could not describe consumer group %s (%s); assuming no worker runs",
                       settings.app_id, error)
        return
    if members:
        raise RebuildError(
            f"the worker's consumer group {settings.app_id} has {len(members)} active member(s) "
            f"({', '.join(members)}): stop the worker first (a rebuild is stop-the-world). A killed "
            f"worker stays listed until its session times out ({settings.session_timeout_s:g}s); the "
            f"embedded dev broker (Tansu) keeps departed members listed for good: once you are sure "
            f"no worker of {settings.config_name} runs, pass --force.")


def _chosen(streams: Iterable[str] | None, *candidates: Iterable[str]) -> list[str]:
    if streams:
        return sorted(set(streams))
    found: set[str] = set()
    for group in candidates:
        found.update(group)
    return sorted(found)


async def rebuild(settings: Any, config: SequencerConfig, store: CheckpointStore, *,
                  source: str = "log", as_of: str | None = None, streams: Iterable[str] | None = None,
                  on_total: Callable[[int], None] | None = None,
                  on_progress: Callable[[int], None] | None = None,
                  check_group: bool = True) -> RebuildResult:
    """Rebuild the chosen streams' states from the log (``source="log"``) or from
    the checkpoints plus the log's tail (``source="checkpoint"``).

    Without ``as_of``: writes the changelogs and the live checkpoints. With
    ``as_of``: only writes checkpoints to ``store.folder / as-of-DATE``.
    """
    if source not in ("log", "checkpoint"):
        raise ValueError(f"source must be 'log' or 'checkpoint', not {source!r}")
    if source == "checkpoint" and as_of is not None:
        raise RebuildError("--as-of needs --from log (a checkpoint may already be past that date)")
    security = settings.aiokafka_security_kwargs()
    topic = settings.topic_events
    if check_group and as_of is None:
        await refuse_if_worker_running(settings)
    started = time.perf_counter()
    wanted = set(streams) if streams else None
    notes: list[str] = []

    seeds: dict[str, StreamState] = {}
    start_offsets: dict[int, int] = {}
    only_partitions: set[int] | None = None
    if source == "checkpoint":
        loaded, refused = store.load_all()
        if refused:
            raise RebuildError("refused checkpoint(s), rebuild with --from log: "
                               + "; ".join(str(e) for e in refused))
        seeds = {s: cp.state for s, cp in loaded.items() if wanted is None or s in wanted}
        if not seeds:
            raise RebuildError(f"no checkpoints in {store.folder} to rebuild from; use --from log")
        missing = sorted(wanted - set(seeds)) if wanted else []
        per_partition: dict[int, int] = {}
        unplaced = list(missing)
        for stream, state in seeds.items():
            mine = offsets_in_topic(state.source_offsets, topic)
            if not mine:
                unplaced.append(stream)
            for partition, offset in mine.items():
                per_partition[partition] = min(per_partition.get(partition, offset), offset)
        if unplaced:
            notes.append(f"no checkpoint with offsets on {topic} for {', '.join(sorted(unplaced))}: "
                         "every partition is read from the start")
        else:
            # Partitions no checkpoint mentions are read from the start (a
            # stream that appeared there after the checkpoints were taken).
            start_offsets = per_partition
            if wanted is not None:
                only_partitions = set(per_partition)  # the chosen streams live nowhere else
    fold = LogFold(config, topic, max_event_bytes=settings.max_event_bytes, states=seeds, as_of=as_of)

    def take(records: list) -> None:
        fold.feed(records)
        if on_progress is not None:
            on_progress(len(records))

    read = await read_topic(settings.bootstrap_servers, topic, take, start_offsets=start_offsets,
                            only_partitions=only_partitions, security=security, on_total=on_total)
    if not read.exists:
        raise RebuildError(f"event topic {topic} does not exist on {settings.bootstrap_servers}")

    tables = None
    if as_of is None:
        tables = await asyncio.gather(
            read_changelog(settings.bootstrap_servers, changelog_topic(settings.app_id, STATES_TABLE), security),
            read_changelog(settings.bootstrap_servers, changelog_topic(settings.app_id, LAST_EVENTS_TABLE),
                           security))
    checkpointed = {p.name.split("_", 2)[2][:-5] for p in store.files()} if source == "log" else set()
    chosen = _chosen(streams, fold.states, tables[0].streams() if tables else (), checkpointed)
    final = {s: fold.states[s] for s in chosen if s in fold.states}
    applied = sum(fold.decisions_by_stream.get(s, 0) for s in chosen)
    result = RebuildResult(final, chosen, read.records, applied, fold.dead_letter_reasons,
                           read.start, read.end, 0.0, after_as_of=fold.after_as_of, notes=notes)

    if as_of is not None:
        folder = store.folder / f"as-of-{as_of}"
        as_of_store = CheckpointStore(folder, config)
        as_of_store.clear_all()
        as_of_store.save_all(final[s] for s in sorted(final))
        result.checkpoint_folder = folder
    else:
        assert tables is not None
        result.written_records, result.tombstoned = await write_changelogs(
            settings, chosen, final, fold.last_events, fold.partition_of, tables[0], tables[1])
        for stream in chosen:
            if stream in final:
                store.save(final[stream])
            elif _valid_name(stream):
                store.clear(stream)
        result.checkpoint_folder = store.folder
    result.seconds = time.perf_counter() - started
    return result


def _valid_name(stream: str) -> bool:
    from .domain.events import STREAM_NAME

    return bool(STREAM_NAME.match(stream))


async def write_changelogs(settings: Any, chosen: list[str], states: Mapping[str, StreamState],
                           last_events: Mapping[str, DayEvent], partition_of: Mapping[str, int],
                           states_log: ChangelogContents, events_log: ChangelogContents) -> tuple[int, list[str]]:
    """Write the chosen streams' table records; returns (records written, streams deleted)."""
    from aiokafka import AIOKafkaProducer

    from .broker import create_topics

    await create_topics(settings.bootstrap_servers,
                        {states_log.topic: settings.partitions, events_log.topic: settings.partitions},
                        compacted=(states_log.topic, events_log.topic),
                        replication_factor=settings.replication,
                        security=settings.aiokafka_security_kwargs())
    planned: list[tuple[str, int, bytes, bytes | None]] = []
    tombstoned: list[str] = []
    for stream in chosen:
        key = stream.encode()
        state = states.get(stream)
        if state is None:
            # Deleted: a tombstone wherever either table holds a value.
            for contents in (states_log, events_log):
                planned.extend((contents.topic, p, key, None) for p in sorted(contents.live(stream)))
            tombstoned.append(stream)
            continue
        home = partition_of.get(stream)
        if home is None:
            raise RebuildError(f"stream {stream}: cannot tell which partition its events are in")
        planned.append((states_log.topic, home, key, encode_state(state)))
        if stream in last_events:
            planned.append((events_log.topic, home, key, encode_event(last_events[stream])))
        # (from a checkpoint with no event in the tail, the last event is unchanged: kept)
        for contents in (states_log, events_log):
            # A stale copy in another partition would be restored by another worker.
            planned.extend((contents.topic, p, key, None) for p in sorted(contents.live(stream)) if p != home)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=0,
                                enable_idempotence=False, **settings.aiokafka_security_kwargs())
    await producer.start()
    try:
        for topic, partition, key, value in planned:
            # One record per request: each is its own batch (exact end offsets).
            await producer.send_and_wait(topic, value=value, key=key, partition=partition)
    finally:
        await producer.stop()
    return len(planned), tombstoned


# --- verify -----------------------------------------------------------------------

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
class VerifyResult:
    streams: list[str]
    drift: list[Drift]
    notes: list[str]
    records_read: int
    seconds: float


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
    written earlier than the last event is consistent, and is reported as a
    note, not as drift.
    """
    started = time.perf_counter()
    security = settings.aiokafka_security_kwargs()
    topic = settings.topic_events
    wanted = set(streams) if streams else None
    notes: list[str] = []
    drift: list[Drift] = []

    loaded, refused = store.load_all()
    for error in refused:
        stream = error.path.name.split("_", 2)[2][:-5] if error.path.name.count("_") >= 2 else error.path.name
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

    def take(records: list) -> None:
        fold.feed(records)
        if on_progress is not None:
            on_progress(len(records))

    read, table = await asyncio.gather(
        read_topic(settings.bootstrap_servers, topic, take, security=security, on_total=on_total),
        read_changelog(settings.bootstrap_servers, changelog_topic(settings.app_id, STATES_TABLE), security))
    if not read.exists:
        notes.append(f"event topic {topic} does not exist: the log is empty")
    if not table.exists:
        notes.append(f"changelog {table.topic} does not exist: the table is empty (no worker ran?)")

    chosen = _chosen(streams, fold.states, table.streams(), loaded)
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
                notes.append(f"{stream}: checkpoint is {expected.events_applied - at.events_applied} events "
                             f"behind the log (consistent with the log at offset {position[1]} of partition "
                             f"{position[0]})")
        elif position is not None:
            drift.append(Drift(stream, where, "source_offsets", "a position the log reached",
                               dict(cp.state.source_offsets)))
        else:
            drift.extend(diff_states(stream, where, expected, cp.state))
    return VerifyResult(chosen, drift, notes, read.records, time.perf_counter() - started)
