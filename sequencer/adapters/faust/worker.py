"""The Faust worker: day events in, decisions out, stream states in a changelog-backed table.

``create_app(settings, config)`` builds everything; importing this module has
no side effects. The agent is thin: it takes a batch of events, lets
``EventProcessor`` fold it, and hands the outcome to `batch_commit.BatchCommit`
(send decisions and dead letters, flush, write states, flush, commit input
offsets). A failed step commits nothing and changes no state; the consumer is
sought back and the batch folded again after a growing pause.

A worker writes and serves only the streams of the partitions assigned to it
now (`WorkerRuntime.states`): on revocation they leave its view before any
checkpoint is written, so a clean stop never writes states it lost to another
worker (and `CheckpointStore.save` refuses to replace a newer checkpoint).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterable

import faust
from faust.types import TP

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.app.batch_commit import BatchCommit, CommitResult
from sequencer.app.batch_pipeline import BatchPipeline, FoldedBatch
from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder
from sequencer.app.codecs import encode_dead_letter
from sequencer.domain import SequencerConfig, StreamState, partition_key, split_partition_key
from sequencer.adapters.faust.live_state import (
    LAST_EVENTS_TABLE,
    STATES_TABLE,
    CheckpointSchedule,
    CheckpointWriter,
    LiveStates,
    changelog_partition,
)
from sequencer.app.processor import EventProcessor
from sequencer.app.records import SourceRecord
from sequencer.settings import Settings
from sequencer.adapters.faust.private_api import commit_offsets, install_fast_drain
from sequencer.adapters.faust.fetch_wait import install as install_short_fetch_wait
from sequencer.adapters.faust.record_intake import MOST_WAITING, RecordIntake, record_of
from sequencer.adapters.faust.take_bursts import SETTLE_S, take_bursts
from sequencer.adapters.faust.per_record import EventBytesSchema, QuietMonitor
from sequencer.adapters.faust.commit_ports import FaustProducerPort, FaustTablePort
from sequencer.app.input_offsets import InputOffsets
from sequencer.adapters.kafka.log_reader import read_range
from sequencer.adapters.kafka.lag import committed_offsets
from sequencer.app.latency import DecisionLatency
from sequencer.app.membership_watch import TICK_S as MEMBERSHIP_TICK_S, MembershipWatch
from sequencer.adapters.http.views import register_views
from sequencer.app.worker_status import WorkerStatus

logger = logging.getLogger(__name__)

#: Events folded per batch: large enough to amortise the flush and the table
#: writes, small enough that a batch is a fraction of a second.
BATCH_SIZE = 5000
#: Seconds a partial batch waits for more events before it is processed.
BATCH_WITHIN_S = 0.05

#: Bytes of one produce batch (Faust's default: 16 KiB). aiokafka queues a
#: partition's next batch only once the one before it has left in a request,
#: so a batch commit's thousands of decisions (about 460 bytes each) in 16 KiB
#: batches took one round trip per 35 records per partition. Below the 1 MiB
#: a Kafka broker accepts in one record batch by default (message.max.bytes).
PRODUCE_BATCH_BYTES = 512 * 1024

#: Allocations between two collections of the youngest generation (Python: 700);
#: see `freeze_long_lived_objects`.
GC_YOUNG_THRESHOLD = 20_000

#: Seconds between checks for partitions whose fetched records never arrived.
STALL_CHECK_S = 2.0
#: Seconds between looks at why the worker folds nothing (worker_status).
WAIT_REPORT_S = 2.0


@dataclass
class WorkerRuntime:
    """What the HTTP views, the CLI and the tests can see of a running worker."""

    settings: Settings
    config: SequencerConfig
    store: CheckpointStore
    live: LiveStates
    processor: EventProcessor
    schedule: CheckpointSchedule
    checkpoints: CheckpointWriter | None = None  # rounds of the schedule, off the batch path
    started_at: float = field(default_factory=time.time)
    last_batch_at: float | None = None
    rate_window: list[tuple[float, int]] = field(default_factory=list)
    states_table: Any = None
    last_events_table: Any = None
    batches: int = 0  # batches handed to the agent
    input_offsets: Any = None  # input_offsets.InputOffsets: holes, stalls, commits
    pipeline: Any = None  # batch_pipeline.BatchPipeline: batches folded one ahead of their commits
    latency: DecisionLatency = field(default_factory=DecisionLatency)  # record time -> decision acked
    owned: set[int] = field(default_factory=set)  # partitions of the events topic assigned now
    status: WorkerStatus = field(default_factory=WorkerStatus)
    membership: Any = None  # membership_watch.MembershipWatch: freezes past the session timeout

    def processing_rate(self, horizon_s: float = 30.0) -> float:
        """Events per second over the last ``horizon_s`` seconds."""
        now = time.monotonic()
        recent = [(t, n) for t, n in self.rate_window if now - t <= horizon_s]
        self.rate_window[:] = recent
        if not recent:
            return 0.0
        span = max(now - recent[0][0], 1.0)
        return sum(n for _, n in recent) / span

    def owns(self, stream: str, state: StreamState) -> bool:
        """Whether the stream's partition of the events topic is assigned to this worker now."""
        return changelog_partition(state, stream, self.settings.topic_events,
                                   self.settings.partitions) in self.owned

    def own(self, partitions: Iterable[int]) -> None:
        self.owned = set(partitions)

    def assigned(self, partitions: Iterable[int]) -> None:
        """An assignment: own ``partitions``, decide every stream again from the tables,
        and take the others' streams out of the tables' memory.

        The cache is emptied: it may hold values of partitions restored now, a
        view's read of another worker's stream from its checkpoint, say, that
        the restored changelog has gone past. Kept partitions lose nothing:
        their table values are the cached ones (a batch commit writes both, and
        a revocation waits for the batch in flight)."""
        self.own(partitions)
        self.live.forget()
        self.drop_partitions(set(range(self.settings.partitions)) - self.owned, from_tables=True)

    def disown(self, partitions: Iterable[int]) -> None:
        self.owned -= set(partitions)

    def drop_partitions(self, partitions: set[int], *, from_tables: bool = False) -> list[str]:
        """Take the streams of ``partitions`` out of the cache (and the tables' memory).

        On a revocation only the cache: Faust revokes every partition and
        then assigns most of them again, and it restores only the newly
        assigned ones from their changelogs, so the tables' values of a
        partition kept must stay. On an assignment ``from_tables`` too, for the
        partitions not assigned: the memory store keeps their values (it drops
        only restored keys, and only when a recovery completes), and a
        partition assigned later is restored in full."""
        topic, count = self.settings.topic_events, self.settings.partitions
        dropped = set()
        for stream, state in self.live.cached().items():
            if changelog_partition(state, stream, topic, count) in partitions:
                dropped.add(stream)
        tables = [t for t in (self.states_table, self.last_events_table) if t is not None] if from_tables else []
        if tables:
            for key in list(tables[0].data.keys()):
                stream = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
                state = self.live.get(stream)
                if state is not None and changelog_partition(state, stream, topic, count) in partitions:
                    dropped.add(stream)
        for stream in dropped:
            self.live.drop(stream)
            for table in tables:
                table.data.pop(stream.encode(), None)
        if dropped:
            logger.info("partitions %s not this worker's: %d streams left its view%s", sorted(partitions),
                        len(dropped), " and its tables" if tables else "")
        return sorted(dropped)

    def state(self, stream: str) -> StreamState | None:
        """The stream's state if this worker owns it, else None."""
        state = self.live.get(stream)
        return state if state is not None and self.owns(stream, state) else None

    def states(self) -> dict[str, StreamState]:
        """Every stream this worker owns: table values, overlaid by the cache.

        While the tables are not ready (`LiveStates.tables_ready`) only the
        cache: a half-restored value must reach neither a view nor a checkpoint
        file (a stop during a recovery writes every owned stream)."""
        found: dict[str, StreamState] = {}
        if self.states_table is not None and self.live.tables_ready():
            for key in list(self.states_table.keys()):
                stream = key.decode() if isinstance(key, bytes) else str(key)
                state = self.live.get(stream)
                if state is not None:
                    found[stream] = state
        found.update(self.live.cached())
        return {stream: state for stream, state in found.items() if self.owns(stream, state)}


class FaustConsumerPort:
    """`gap_repair.ConsumerPort` over Faust's consumer, for the events topic."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def assigned(self) -> list[str]:
        topic = self.settings.topic_events
        return [partition_key(tp.topic, tp.partition) for tp in self.app.consumer.assignment()
                if tp.topic == topic]

    def highwater(self, tp: str) -> int | None:
        try:
            return self.app.consumer.highwater(_faust_tp(tp))
        except Exception:  # noqa: BLE001 - not assigned (any more): unknown
            return None

    async def position(self, tp: str) -> int:
        return await self.app.consumer.position(_faust_tp(tp))

    async def seek(self, tp: str, offset: int) -> None:
        # seek_wait (public), not seek: Faust's seek calls aiokafka from this thread
        # while the consumer thread may be inside fetched_records, whose
        # `del self._records[tp]` then raised KeyError and crashed the Fetcher
        # (seen once in CI right after an assignment). seek_wait runs it on the
        # consumer's own thread, sets the read offset and waits for the position.
        await self.app.consumer.seek_wait({_faust_tp(tp): offset})

    async def commit(self, offsets: Any) -> bool:
        # Not Faust's public commit(): it commits only what Faust acked, and acks
        # are off for this topic (private_api, use 1).
        return await commit_offsets(self.app.consumer, {_faust_tp(tp): offset for tp, offset in offsets.items()})

    async def group_offsets(self) -> dict[str, int]:
        settings = self.settings
        topic = settings.topic_events
        found = await committed_offsets(settings.bootstrap_servers, settings.app_id, topic,
                                        KafkaConnection.of(settings).aiokafka_kwargs())
        return {partition_key(topic, partition): offset for partition, offset in found.items()}

    async def read_range(self, tp: str, start: int, stop: int) -> list[SourceRecord]:
        topic, partition = split_partition_key(tp)
        return await read_range(self.settings.bootstrap_servers, topic, partition, start, stop,
                                KafkaConnection.of(self.settings).aiokafka_kwargs())

    async def log_start(self, tp: str) -> int:
        # Faust's consumer answers it (ListOffsets, on its own thread): no
        # connection of its own at each partition learned.
        faust_tp = _faust_tp(tp)
        return (await self.app.consumer.earliest_offsets(faust_tp))[faust_tp]


def _faust_tp(tp: str) -> TP:
    return TP(*split_partition_key(tp))


def create_app(settings: Settings, config: SequencerConfig, *,
               batch_size: int = BATCH_SIZE, web_enabled: bool = True) -> faust.App:
    """A Faust app for one named configuration: its own app id, tables and checkpoints."""
    # Faust makes only the last level of its datadir.
    settings.faust_datadir.parent.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=settings.broker_urls,
        store="memory://",
        datadir=str(settings.faust_datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_s,
        broker_rebalance_timeout=settings.session_timeout_s,
        consumer_auto_offset_reset="earliest",
        broker_max_poll_records=5000,
        stream_buffer_maxsize=MOST_WAITING,  # the agent's stream buffer: as many as the direct intake holds
        stream_wait_empty=False,
        producer_acks=-1,
        producer_max_batch_size=PRODUCE_BATCH_BYTES,
        # No standby copies: a promoted standby was seen to resume stale (see
        # docs/benchmarks.md, "scale-out"); a takeover restores from the changelog.
        table_standby_replicas=0,
        web_enabled=web_enabled,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_host=settings.web_host,
        monitor=QuietMonitor(),
        **KafkaConnection.of(settings).faust_broker_kwargs(),
    )
    # acks=False: the worker commits the input offsets itself (InputOffsets),
    # from what its states hold. Faust's ack bookkeeping was seen to stall its
    # commits for good after records were delivered again (a seek back), and
    # it cannot know of records that gap_repair had to fetch again.
    events_topic = app.topic(settings.topic_events, schema=EventBytesSchema(),
                             partitions=settings.partitions, acks=False)
    decisions_topic = app.topic(settings.topic_decisions, key_serializer="raw", value_serializer="raw",
                                partitions=settings.partitions)
    dead_letters_topic = app.topic(settings.topic_dead_letters, key_serializer="raw",
                                   value_serializer="raw", partitions=settings.partitions)
    # key_type/value_type bytes is what makes a Faust table use the raw codec,
    # also when it reads its changelog back in recovery (a Schema alone does not).
    states_table = app.Table(STATES_TABLE, default=None, key_type=bytes, value_type=bytes,
                             partitions=settings.partitions)
    last_events_table = app.Table(LAST_EVENTS_TABLE, default=None, key_type=bytes, value_type=bytes,
                                  partitions=settings.partitions)

    store = CheckpointStore(checkpoint_folder(settings.state_dir, settings.config_name), config)
    assigned_once = False  # before the first assignment the tables hold nothing yet
    seeds, refused = store.load_all()
    for error in refused:
        logger.error("refused %s; the stream falls back to the table or the log", error)
    live = LiveStates(
        config,
        read_table=lambda stream: states_table.get(stream.encode()),
        read_last_event=lambda stream: last_events_table.get(stream.encode()),
        seeds={stream: cp.state for stream, cp in seeds.items()},
        # Faust's rebalancing flag is up from a revocation (the first join's too)
        # until its recovery of the tables is done and the streams are resumed.
        tables_ready=lambda: assigned_once and not app.rebalancing,
    )
    processor = EventProcessor(config, live.get, live.last_event, settings.max_event_bytes,
                               partitions=settings.partitions)  # the events topic's count (worker_cmd)
    schedule = CheckpointSchedule(store, settings.checkpoint_every_events, settings.checkpoint_every_seconds)
    runtime = WorkerRuntime(settings, config, store, live, processor, schedule,
                            states_table=states_table, last_events_table=last_events_table)
    runtime.checkpoints = CheckpointWriter(schedule, runtime.states,
                                           lambda state: runtime.owns(state.stream, state))
    app.sequencer = runtime  # read by the web views and the CLI

    input_offsets = InputOffsets(FaustConsumerPort(app, settings), lambda: runtime.states().values(),
                                 checkpoint_only=live.checkpoint_only)
    runtime.input_offsets = input_offsets
    table_port = FaustTablePort(states_table, last_events_table)
    membership = MembershipWatch(settings.session_timeout_s, time.monotonic)
    runtime.membership = membership
    batch_commit = BatchCommit(
        FaustProducerPort(app), table_port, input_offsets, live,
        decisions_topic=decisions_topic.get_topic_name(),
        dead_letters_topic=dead_letters_topic.get_topic_name(),
        encode_dead_letter=lambda letter: encode_dead_letter(letter, settings.dead_letter_value_bytes),
        last_changelog_record_alone=settings.changelog_single_record_batches,
        may_write=membership.doubt)

    def landed(folded: FoldedBatch, result: CommitResult) -> None:
        runtime.status.folded()
        runtime.last_batch_at = time.time()
        runtime.rate_window.append((time.monotonic(), len(folded.records)))
        schedule.note(folded.outcome.states, result.decisions)
        # Never awaited here: writing 200 files took up to 1.2 s, and the next
        # batch's decisions waited for it (docs/benchmarks.md, "Checkpoints off
        # the batch path").
        runtime.checkpoints.start_if_due()

    def failed(failure: Exception, delay: float) -> None:
        runtime.status.set("retrying", f"{failure}; folded again in {delay:.1f} s")

    # The next batch is folded while the one before it is committed
    # (batch_pipeline); a revocation and a stop wait for both (drain).
    pipeline = BatchPipeline(
        processor, batch_commit, input_offsets, on_landed=landed, on_failed=failed,
        on_sent=lambda folded, sent_at: runtime.latency.observe_sent(folded.outcome.decisions, folded.records,
                                                                     sent_at))
    runtime.pipeline = pipeline

    # With SEQUENCER_DIRECT_INTAKE (and the fast drain), the consumer puts the events
    # topic's records here and the agent's stream stays empty (record_intake);
    # by default the agent's Faust stream hands them over.
    intake = RecordIntake()
    direct = False

    async def batches(stream: faust.Stream) -> AsyncIterator[list[SourceRecord]]:
        if direct:
            while True:
                yield await intake.take(batch_size, BATCH_WITHIN_S, SETTLE_S)
        # No acks: the events topic's are off, the worker commits its input offsets itself.
        async for events in take_bursts(stream, batch_size, BATCH_WITHIN_S, acks=False):
            yield [record_of(event.message) for event in events]

    @app.agent(events_topic, name="fold-day-events")
    async def fold_day_events(stream: faust.Stream) -> None:
        try:
            async for records in batches(stream):
                runtime.batches += 1
                work = asyncio.ensure_future(pipeline.submit(records))
                try:
                    await asyncio.shield(work)
                except asyncio.CancelledError:
                    if not work.done():
                        await work
                    raise
        finally:
            # A stop cancels the agent: what is folded reaches the broker first.
            await pipeline.drain()

    @app.timer(interval=MEMBERSHIP_TICK_S, on_leader=False)
    async def tick_membership() -> None:
        membership.tick()

    @app.timer(interval=STALL_CHECK_S, on_leader=False)
    async def watch_for_stalls() -> None:
        if pipeline.idle:
            await input_offsets.check_stalls(runtime.batches, lambda: pipeline.idle)

    @app.timer(interval=max(1.0, settings.checkpoint_every_seconds / 2), on_leader=False)
    async def periodic_checkpoint() -> None:
        runtime.checkpoints.start_if_due()

    @app.on_partitions_assigned.connect
    async def on_assigned(app_: faust.App, assigned: Any, **kwargs: Any) -> None:
        nonlocal assigned_once
        assigned_once = True
        membership.assigned()
        runtime.assigned(tp.partition for tp in assigned if tp.topic == settings.topic_events)
        freeze_long_lived_objects()
        runtime.status.set("recovering", "partitions assigned: restoring the tables from their "
                           "changelogs before folding")

    @app.on_partitions_revoked.connect
    async def on_revoked(app_: faust.App, revoked: Any, **kwargs: Any) -> None:
        # From now on the revoked streams are not this worker's: no checkpoint
        # write (not even one of the batch in flight) and no view serves them.
        lost = {tp.partition for tp in revoked if tp.topic == settings.topic_events}
        runtime.disown(lost)
        if intake.clear():  # as Faust clears its stream buffers: they come again after a seek back
            logger.info("partitions revoked: the records not yet folded are read again later")
        runtime.status.set("rebalancing", "partitions revoked: waiting for the group to assign them")
        # Another worker may own these streams next. Its restore must see our
        # last changelog records: finish the batch in flight before the group
        # moves on (without fencing, a late write would land after its restore).
        try:
            await asyncio.wait_for(pipeline.drain(), timeout=settings.session_timeout_s * 5)
        except asyncio.TimeoutError:
            logger.error("a batch was still in flight when partitions were revoked")
        await input_offsets.settled()  # the next owner starts from our last commit
        runtime.drop_partitions(lost)
        await runtime.checkpoints.write()  # after the round in flight, which skips what was lost
        input_offsets.forget()

    @app.on_before_shutdown.connect
    async def write_final_checkpoints(app_: faust.App, **kwargs: Any) -> None:
        # At shutdown every owned stream, not only those this run touched: a
        # stream folded by an earlier, killed run may have a stale file.
        await pipeline.drain()
        await input_offsets.settled()
        await runtime.checkpoints.write(force=True)

    @app.timer(interval=WAIT_REPORT_S, on_leader=False)
    async def report_waiting() -> None:
        runtime.status.observe(recovering=_in_recovery(app), assigned=bool(runtime.owned),
                               session_timeout_s=settings.session_timeout_s)

    if settings.fast_drain:
        installed = install_fast_drain(app, {settings.topic_events: intake} if settings.direct_intake else None)
        direct = installed and settings.direct_intake
    install_short_fetch_wait(app)  # after fast drain: it subclasses the installed consumer
    register_views(app, runtime)
    return app


def freeze_long_lived_objects() -> None:
    """Keep the objects alive now out of the garbage collector's full collections.

    A full (generation 2) collection walks every tracked object: with Faust,
    aiokafka, pandas and pydantic loaded that is about 90 ms on this project's
    machine, and it fell inside a batch of the live feed once every few
    seconds, the largest part of that batch's latency (docs/benchmarks.md,
    "Batches handed over when a burst settles"). ``gc.freeze`` moves what is
    alive into a permanent generation that the collector skips; objects made
    later are collected as before, and a frozen one is still freed by its
    reference count. Called at each assignment (nothing is folded then),
    after a collection, so no garbage is frozen.

    The youngest generation is collected every ``GC_YOUNG_THRESHOLD``
    allocations instead of Python's 700: a batch allocates a few hundred
    short-lived objects per record (records, events, decisions, encoded
    bytes), nearly all freed by their reference count, and a young collection
    every 700 allocations scanned the ones still alive, again and again. On the
    120,000-event workload the collector's time fell from about 0.75 s to
    0.2-0.45 s (docs/benchmarks.md, "Faust's per-record work"); a young
    collection of 20,000 objects takes a few milliseconds."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def _in_recovery(app: faust.App) -> bool:
    try:
        return bool(app.tables.recovery.in_recovery)
    except AttributeError:  # not started yet
        return False
