"""Rebuild stream states from the event log (no argparse here).

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

Every changelog record is produced and acknowledged on its own, so it is its
own batch on the broker and even a reader trusting ListOffsets (Faust's table
recovery does) sees all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.adapters.files.checkpoints import CheckpointStore, OlderCheckpoint, OtherPartitionCheckpoint, stream_of_file
from sequencer.app.codecs import encode_event, encode_state
from sequencer.domain import DayEvent, SequencerConfig, SequencerError, StreamState, offsets_in_topic
from sequencer.adapters.faust.live_state import LAST_EVENTS_TABLE, STATES_TABLE
from sequencer.app.log_fold import LogFold, chosen_streams
from sequencer.adapters.kafka.log_reader import ChangelogContents, changelog_topic, read_changelog, read_topic

logger = logging.getLogger(__name__)


class RebuildError(SequencerError):
    """A rebuild cannot proceed (worker running, refused checkpoint...)."""


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
                                       KafkaConnection.of(settings).aiokafka_kwargs())
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
    security = KafkaConnection.of(settings).aiokafka_kwargs()
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
    if source == "log":
        # Only where a stream's records lie (its home partition, as the worker refused
        # the others): the fold itself starts from nothing. A refused file says nothing.
        fold.known_homes(cp.state for cp in store.load_all()[0].values())

    def take(records: list) -> None:
        fold.feed(records)
        if on_progress is not None:
            on_progress(len(records))

    read = await read_topic(settings.bootstrap_servers, topic, take, start_offsets=start_offsets,
                            only_partitions=only_partitions, security=security, on_total=on_total,
                            on_partitions=fold.topic_partitions)
    if not read.exists:
        raise RebuildError(f"event topic {topic} does not exist on {settings.bootstrap_servers}")
    if read.deleted:
        raise RebuildError(
            f"records the rebuild needs were deleted by the broker (retention or DeleteRecords): "
            f"{read.deleted_text(topic)}; states folded from what is left would miss those days. Nothing "
            "was written. Rebuild --from checkpoint with checkpoints at or past those offsets, or replay "
            "the history from files (sequencer replay)")

    tables = None
    if as_of is None:
        tables = await asyncio.gather(
            read_changelog(settings.bootstrap_servers, changelog_topic(settings.app_id, STATES_TABLE), security),
            read_changelog(settings.bootstrap_servers, changelog_topic(settings.app_id, LAST_EVENTS_TABLE),
                           security))
    checkpointed = {stream_of_file(p) for p in store.files()} if source == "log" else set()
    chosen = chosen_streams(streams, fold.states, tables[0].streams() if tables else (), checkpointed)
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
            settings, chosen, final, fold.last_events, fold.partition_of, tables[0], tables[1],
            partitions=read.partitions)
        for stream in chosen:
            if stream in final:
                _save_rebuilt(store, final[stream], result.notes)
            elif _valid_name(stream):
                store.clear(stream)
        result.checkpoint_folder = store.folder
    result.seconds = time.perf_counter() - started
    return result


def _save_rebuilt(store: CheckpointStore, state: StreamState, notes: list[str]) -> None:
    """A rebuild makes the log the truth: the table already holds the rebuilt
    state, so its checkpoint follows it even where the file was further on (a
    log shortened by retention, a corrected log). Said, never silent."""
    try:
        store.save(state)
    except OlderCheckpoint as refusal:
        store.clear(state.stream)
        store.save(state)
        notes.append(f"checkpoint of {state.stream} moved back from {refusal.kept.last_processed_date} "
                     f"({refusal.kept.events_applied} events) to {state.last_processed_date} "
                     f"({state.events_applied} events): the log holds less than the file did")
    except OtherPartitionCheckpoint as refusal:
        store.clear(state.stream)
        store.save(state)
        notes.append(f"{refusal} (replaced by the rebuild's state)")


def _valid_name(stream: str) -> bool:
    from sequencer.domain.events import STREAM_NAME

    return bool(STREAM_NAME.fullmatch(stream))


async def write_changelogs(settings: Any, chosen: list[str], states: Mapping[str, StreamState],
                           last_events: Mapping[str, DayEvent], partition_of: Mapping[str, int],
                           states_log: ChangelogContents, events_log: ChangelogContents, *,
                           partitions: int) -> tuple[int, list[str]]:
    """Write the chosen streams' table records; returns (records written, streams deleted).

    Changelogs that do not exist yet get the events topic's ``partitions``: a
    stream's record goes to the partition of its events (the worker's rule)."""
    from aiokafka import AIOKafkaProducer

    from sequencer.adapters.kafka.topics import create_topics

    await create_topics(settings.bootstrap_servers,
                        {states_log.topic: partitions, events_log.topic: partitions},
                        compacted=(states_log.topic, events_log.topic),
                        replication_factor=settings.replication,
                        security=KafkaConnection.of(settings).aiokafka_kwargs())
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
                                enable_idempotence=False, **KafkaConnection.of(settings).aiokafka_kwargs())
    await producer.start()
    try:
        for topic, partition, key, value in planned:
            # One record per request: each is its own batch (exact end offsets).
            await producer.send_and_wait(topic, value=value, key=key, partition=partition)
    finally:
        await producer.stop()
    return len(planned), tombstoned
