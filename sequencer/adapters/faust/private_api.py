"""Every use of Faust's (and, under it, aiokafka's) private APIs by the worker, in one place.

Checked on faust-streaming 0.15.3 with aiokafka 0.14.0 and mode-streaming 0.7.1
(``FAUST_CHECKED``; ``tests/unit/test_faust_private_api.py`` fails on another
major.minor of faust-streaming and checks that each name below still exists).
On an upgrade, read each use against the new source and update the version.

Private uses, each with why no public API does it:

1. ``Consumer._commit(offsets)`` (`commit_offsets`): commits the given input
   offsets on the consumer's own thread. The worker commits up to what its
   states cover (`sequencer.app.input_offsets`); Faust's public ``commit()``
   commits only offsets Faust acked itself, and acks are off for the events
   topic (its ack bookkeeping stalled for good after a seek back).
2. ``Producer._ensure_producer()`` (`aiokafka_producer`): the aiokafka producer
   under Faust's transport producer, for one ``BatchBuilder`` per partition in
   the batch commit (`commit_ports.FaustProducerPort`). Faust's ``send`` builds a
   future, fires a signal and queues a task per record; a produce batch of its
   own also keeps each changelog partition's last record alone in a batch,
   which the embedded broker's ListOffsets needs
   (``SEQUENCER_CHANGELOG_SINGLE_RECORD_BATCHES``). ``Table.send_changelog``,
   public, queues one ``send_soon`` per record, so it cannot keep that.
3. The fast-drain consumer (`fast_drain_consumer_class`, `install_fast_drain`):
   overrides ``Consumer._drain_messages`` and reads ``_stopped``,
   ``_read_offset``, ``_commit_every``, ``_n_acked``, ``_add_gap`` and the
   fetcher's ``_stopped`` like the method it replaces. Faust awaits, per
   message, a race of two new tasks; this awaits the callback directly while
   the flow is active (docs/benchmarks.md). While every partition is paused for
   a full stream buffer it waits for a buffer to drop (an override of
   ``on_buffer_drop``; ``_get_active_partitions`` and ``_buffered_partitions``
   say so) instead of Faust's fixed second of sleep, and while some are paused
   a fetch of the others waits ``BUFFERED_GETMANY_TIMEOUT_S``, not a second.
   It hands a record to the conductor's handler of its partition
   (``Conductor._tp_to_callback``) without the conductor's ``on_message``, which
   takes ``_tp_to_callback_lock`` per record: only while that lock is free (the
   conductor holds it while it rebuilds the handlers), else through
   ``on_message`` as before. Its ``getmany`` is Faust's (``_wait_next_records``,
   ``_to_message``, ``perform_seek``, ``_buffered_partitions``) with a
   partition's high watermark read once a fetch, not once a record.
   Off with ``SEQUENCER_FAST_DRAIN=false``.
4. In `sequencer.adapters.faust.fetch_wait`, still in its own module (to move
   here): overrides ``Consumer._new_consumer_thread`` and
   ``AIOKafkaConsumerThread._create_worker_consumer`` and sets aiokafka's
   ``AIOKafkaConsumer._fetch_max_wait_ms`` (Faust fixes it at 1,500 ms) and
   ``_isolation_level`` (``read_committed``; Faust gives it only to its own
   exactly-once).

5. The agent's batches (`sequencer.adapters.faust.take_bursts`, through
   `enable_passive_drain` and `remove_stream_processor`): ``Stream._enable_passive``
   and ``Stream._processors``, as ``Stream.take_events`` uses them. Faust has
   no public way to hand a batch over when its burst settles rather than at a
   fixed ``within`` tick (docs/benchmarks.md, "Batches handed over when a burst
   settles").

6. The quick producer-buffer check (`quick_ebb_producer_class`, installed with
   the fast drain): replaces ``ProducerBuffer.wait_until_ebb`` on the instance
   by one that reads the buffer's ``pending`` queue, as ``ProducerBuffer.size``
   does without a threaded producer, instead of a settings lookup per record.

7. The agent's stream (`quick_stream_class`, installed with the fast drain as
   the app's ``Stream`` setting, a public one): a ``faust.Stream`` subclass whose
   iterator is Faust's ``_py_aiter`` without a turn of the loop per record (its
   docstring lists the private names it reads). ``tests/unit/test_quick_stream.py``
   holds it to both of Faust's own iterators. Faust has no public way to let a
   stream take the records waiting in its channel in a row.

Public APIs used where they exist: ``faust.Schema`` subclassed with its
``loads_key``/``loads_value``/``compile`` hooks and ``faust.App(monitor=)``
with a ``Monitor`` subclass (`per_record`), ``Consumer.seek_wait`` (a seek run on the
consumer's thread), ``position``, ``highwater``, ``assignment``,
``Producer.key_partition`` and ``flush``, ``Table.send_changelog`` (reset
tombstones), ``Table.changelog_topic``. ``Table.data`` (the store under a
table) is public, but writing it skips Faust's changelog on purpose: the
batch commit produces the changelog records itself (`commit_ports`), the
reset sends its tombstones, and a revocation drops keys it restored
(`worker.WorkerRuntime.drop_partitions`). Faust's stream ``_set_current_event``
is no longer used: table writes no longer go through ``table[key] = value``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

logger = logging.getLogger(__name__)

#: The faust-streaming release every use above was read against.
FAUST_CHECKED = "0.15.3"
#: The aiokafka release under it (``_fetch_max_wait_ms``, the ``BatchBuilder`` calls).
AIOKAFKA_CHECKED = "0.14.0"


def same_minor(version: str, checked: str = FAUST_CHECKED) -> bool:
    """Whether ``version`` has the major.minor of ``checked`` (patch releases keep private APIs)."""
    return version.split(".")[:2] == checked.split(".")[:2]


async def commit_offsets(consumer: Any, offsets: Mapping[Any, int]) -> bool:
    """Commit ``{TP: next offset}`` for the group, on the consumer's thread (use 1)."""
    return await consumer._commit(offsets)


def aiokafka_producer(producer: Any) -> Any:
    """The started ``AIOKafkaProducer`` under Faust's transport producer (use 2)."""
    return producer._ensure_producer()




#: Seconds a fetch of the active partitions may wait while others are paused
#: because their stream buffer is full (Faust's: 1 s). A partition at the end of
#: its log is active and has nothing to fetch; with a second's wait, the paused
#: ones, resumed meanwhile, waited too, and the agent ran dry (docs/benchmarks.md,
#: "Records straight to the batches, batches folded one ahead").
BUFFERED_GETMANY_TIMEOUT_S = 0.02


def fast_drain_consumer_class(intakes: Mapping[str, Any] | None = None) -> type:
    """Faust's aiokafka consumer with ``_drain_messages`` replaced (use 3).

    ``intakes`` maps a topic to a `record_intake.RecordIntake`: that topic's
    records go there instead of through Faust's conductor and stream (while
    the flow is suspended for a rebalance they are dropped, as a stream's
    buffer is cleared then). A callback already blocked on a full stream buffer
    when a rebalance starts is not interrupted; Faust clears the buffers on
    rebalance, which unblocks it."""
    intake_of = dict(intakes or {}).get
    from faust.transport.consumer import CONSUMER_FETCHING
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaFaustConsumer

    class FastDrainConsumer(AIOKafkaFaustConsumer):  # type: ignore[misc, valid-type]
        _buffer_dropped: asyncio.Event | None = None

        def on_buffer_drop(self, tp: Any) -> None:
            super().on_buffer_drop(tp)
            if self._buffer_dropped is not None:
                self._buffer_dropped.set()

        async def _wait_for_buffer_drop(self) -> bool:
            """While every partition is paused because the stream buffers are full, wait
            (at most a second, as Faust's ``getmany`` would) for a buffer to drop, and
            True; False when some partition is active or paused for another reason."""
            if self._get_active_partitions() or not self._buffered_partitions:
                return False
            if self._buffer_dropped is None:
                self._buffer_dropped = asyncio.Event()
            self._buffer_dropped.clear()
            try:
                await asyncio.wait_for(self._buffer_dropped.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            return True

        async def getmany(self, timeout: float) -> Any:
            """Faust's ``Consumer.getmany`` with each partition's high watermark read once a fetch.

            Faust reads it, through the consumer thread's delegate and aiokafka's
            assignment check, for every record, and hands it to the monitor's
            ``track_tp_end_offset``: about a microsecond a record on the backlog
            (docs/benchmarks.md, "Faust's stream hand-off, trimmed"). Here it is read
            at a partition's first record of the fetch; the rest is Faust's: the
            scheduler's round-robin order, the flow and generation checks per record,
            the records of partitions neither active nor buffered left out."""
            records, active_partitions = await self._wait_next_records(timeout)
            app = self.app
            generation_id = app.consumer_generation_id
            if records is None or self.should_stop:
                return
            if not self.flow_active:
                self.log.dev("getmany called while flow not active. Seek back to committed offsets.")
                try:
                    await self.perform_seek()
                except Exception as ex:  # noqa: BLE001 - as Faust's getmany
                    self.log.warning(f"exception performing seek when flow not active {ex}")
                return
            to_message = self._to_message
            buffered = self._buffered_partitions
            track_end_offset = app.monitor.track_tp_end_offset
            tracked: set = set()
            for tp, record in self.scheduler.iterate(records):
                if not self.flow_active:
                    break
                if app.consumer_generation_id != generation_id:
                    self.log.dev("Generation id changed from %r to %r. Cancelling getmany.",
                                 generation_id, app.consumer_generation_id)
                    break
                if active_partitions is None or tp in active_partitions or tp in buffered:
                    if tp not in tracked:
                        tracked.add(tp)
                        track_end_offset(tp, self.highwater(tp))
                    yield tp, to_message(tp, record)

        async def _drain_messages(self, fetcher: Any) -> None:
            callback = self.callback
            getmany = self.getmany
            consumer_should_stop = self._stopped.is_set
            fetcher_should_stop = fetcher._stopped.is_set
            get_read_offset = self._read_offset.__getitem__
            set_read_offset = self._read_offset.__setitem__
            set_flag = self.diag.set_flag
            unset_flag = self.diag.unset_flag
            commit_every = self._commit_every
            acks_enabled_for = self.app.topics.acks_enabled_for
            suspended = self.suspend_flow.is_set
            # The conductor's handler of a partition, looked up as its ``on_message``
            # does, without taking its lock when nobody holds it (see the class).
            conductor = self.app.topics
            direct_handlers = callback == conductor.on_message
            handler_of = conductor._tp_to_callback.__getitem__
            handlers_updating = conductor._tp_to_callback_lock.locked
            yield_every = 100  # let other tasks (heartbeats, the agent) run
            since_yield = 0
            try:
                while not (consumer_should_stop() or fetcher_should_stop()):
                    if await self._wait_for_buffer_drop():
                        continue  # Faust's getmany would have slept a whole second
                    set_flag(CONSUMER_FETCHING)
                    # While some partition is paused for a full buffer, a getmany on
                    # the others (perhaps at their end) must not wait a second: the
                    # paused ones come back as soon as their buffer drops.
                    ait: Any = getmany(timeout=BUFFERED_GETMANY_TIMEOUT_S if self._buffered_partitions else 1.0)
                    await self.sleep(0)
                    if not self.should_stop:
                        async for tp, message in ait:
                            since_yield += 1
                            if since_yield > yield_every:
                                await asyncio.sleep(0)
                                since_yield = 0
                            offset = message.offset
                            r_offset = get_read_offset(tp)
                            if r_offset is None or offset >= r_offset:
                                gap = offset - (r_offset or 0)
                                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                    await self._add_gap(tp, r_offset + 1, offset)
                                if commit_every is not None and self._n_acked >= commit_every:
                                    self._n_acked = 0
                                    await self.commit()
                                intake = intake_of(message.topic)
                                if intake is not None:
                                    if not suspended() and not intake.put(message):
                                        await self.wait_first(intake.room(), self.suspend_flow.wait())
                                elif suspended():
                                    await self.wait_first(callback(message), self.suspend_flow.wait())
                                elif direct_handlers and not handlers_updating():
                                    await handler_of(tp)(message)
                                else:
                                    await callback(message)
                                set_read_offset(tp, offset)
                        unset_flag(CONSUMER_FETCHING)
            except self.consumer_stopped_errors:
                if self.transport.app.should_stop:
                    return
                raise
            except asyncio.CancelledError:
                if self.transport.app.should_stop:
                    return
                raise
            finally:
                unset_flag(CONSUMER_FETCHING)

    return FastDrainConsumer


def install_fast_drain(app: Any, intakes: Mapping[str, Any] | None = None) -> bool:
    """Use the fast consumer for ``app`` (use 3), its records of the topics of ``intakes``
    going to those intakes; False, and Faust's own consumer, on another major.minor."""
    import faust

    if not same_minor(faust.__version__):
        logger.warning("faust-streaming %s: fast drain not verified for it (checked on %s); "
                       "using Faust's consumer", faust.__version__, FAUST_CHECKED)
        return False
    app.transport.Consumer = fast_drain_consumer_class(intakes)
    app.transport.Producer = quick_ebb_producer_class(app.transport.Producer)
    app.conf.Stream = quick_stream_class()  # read when the agent builds its stream, at start
    return True


def quick_ebb_producer_class(base: type) -> type:
    """Faust's transport producer whose buffer answers "is it full?" without a settings lookup (use 6).

    The conductor awaits ``producer.buffer.wait_until_ebb()`` for every record it
    hands to a stream (a stream's ``send_soon`` may have filled the buffer); its
    ``size`` reads the ``producer_threaded`` setting through Faust's settings
    registry each time, 1.2 us of a record's 40 (docs/benchmarks.md, "Records
    straight to the batches, batches folded one ahead"; since the events topic's
    records go to the record intake, only the changelog records of a table
    recovery and the path without the fast drain meet it). Without a threaded
    producer the size is the length of the buffer's ``pending`` queue, so the
    check asks that queue and waits as Faust does only when it is over the
    buffer's ``max_messages``."""

    class QuickEbbProducer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            buffer = self.buffer
            if self.app.conf.producer_threaded:
                return  # the size is another queue's: Faust's own check
            pending, wait_as_faust = buffer.pending, buffer.wait_until_ebb

            async def wait_until_ebb() -> None:
                if pending.qsize() > buffer.max_messages:
                    await wait_as_faust()

            buffer.wait_until_ebb = wait_until_ebb  # read by the conductor when it builds its callbacks

    return QuickEbbProducer


#: Records a stream takes from its channel in a row before it lets the loop run its
#: other tasks (Faust's iterator: one; the fast drain hands over 100 in a row).
STREAM_RECORDS_IN_A_ROW = 100


def quick_stream_class() -> type:
    """Faust's ``Stream`` whose iterator does not give the loop a turn for every record (use 7).

    Faust's stream iterator (its Cython ``StreamIterator.next``, and ``_py_aiter``)
    awaits ``asyncio.sleep(0)`` before it takes each value from its channel, and
    awaits every processor's result through ``mode``'s ``maybe_async`` and the
    stream's ``on_merge``, a coroutine each. This one is ``_py_aiter``, the pure
    Python iterator Faust keeps as the reference of the Cython one, with three
    changes: the records waiting in the channel's queue are taken
    ``STREAM_RECORDS_IN_A_ROW`` in a row before a ``sleep(0)`` (when the queue
    is empty it awaits the channel, which gives the loop its turn); a
    processor's coroutine is awaited directly (any other awaitable as Faust
    does); ``on_merge`` is awaited only when a subclass overrides it (the
    base one returns the value). Everything else per value is Faust's, in its
    order: the channel's error first, the flow-control and generation check
    (a value of a suspended flow or an older generation is skipped and acked, as
    ``_py_aiter`` does, its sensor state None as in the Cython iterator),
    tracking of acked topics, the sensors in and out, the current event (the
    task's context variable too), the processors, ``Skip``, the ack after the
    value's consumer returns, ``events_total``.

    Private names, read as ``_py_aiter`` reads them: ``_finalized``,
    ``_active_agens``, ``_processors``, ``_skipped_value``, ``_on_stream_event_in``
    and ``_out``, ``_on_message_in`` and ``_out``, ``_set_current_event``,
    ``_channel_stop_iteration`` and the channel queue's ``_errors``. A stream
    over something other than a channel keeps Faust's iterator."""
    import inspect
    from types import CoroutineType

    import faust
    from faust.exceptions import Skip
    from faust.types import ChannelT, EventT

    base_on_merge = faust.Stream.on_merge
    isawaitable = inspect.isawaitable

    class QuickStream(faust.Stream):  # type: ignore[misc, valid-type]
        def __aiter__(self) -> Any:
            if not isinstance(self.channel, ChannelT):
                return super().__aiter__()
            it = self._quick_aiter()
            self._active_agens.add(it)  # so on_stop closes it, as Faust's __aiter__ does
            return it

        async def _quick_aiter(self) -> Any:
            self._finalized = True
            started_by_aiter = await self.maybe_start()
            app = self.app
            channel = self.channel
            queue = channel.queue
            errors = queue._errors
            queue_empty = queue.empty
            quick_get = queue.get_nowait
            slow_get = channel.__anext__
            processors = self._processors
            on_merge = None if type(self).on_merge is base_on_merge else self.on_merge
            on_stream_event_in = self._on_stream_event_in
            on_stream_event_out = self._on_stream_event_out
            on_message_in = self._on_message_in
            on_message_out = self._on_message_out
            set_current_event = self._set_current_event
            acking_topics = app.topics.acking_topics
            add_unacked = app.consumer.unacked.add
            flow_active = app.flow_control.is_active
            skipped_value = self._skipped_value
            event_class = app.conf.Event
            in_a_row = 0
            try:
                while not self.should_stop:
                    event = None
                    do_ack = self.enable_acks  # set to False to not ack the event
                    value: Any = None
                    sensor_state = None
                    while value is None and event is None:
                        if in_a_row >= STREAM_RECORDS_IN_A_ROW:
                            in_a_row = 0
                            await asyncio.sleep(0)
                        if errors:
                            raise errors.popleft()
                        if queue_empty():
                            in_a_row = 0
                            channel_value = await slow_get()
                        else:
                            in_a_row += 1
                            channel_value = quick_get()
                        if type(channel_value) is event_class or isinstance(channel_value, EventT):
                            event = channel_value
                            message = event.message
                            if not flow_active() or message.generation_id != app.consumer_generation_id:
                                value = skipped_value
                                break
                            tp = message.tp
                            offset = message.offset
                            if message.topic in acking_topics and not message.tracked:
                                message.tracked = True
                                add_unacked(message)
                                on_message_in(tp, offset, message)
                            sensor_state = on_stream_event_in(tp, offset, self, event)
                            set_current_event(event)
                            value = event.value
                        else:
                            value = channel_value
                            set_current_event(None)  # as the Cython iterator (``_py_aiter`` keeps the variable's)
                            sensor_state = None
                        try:
                            for processor in processors:
                                value = processor(value)
                                if type(value) is CoroutineType or isawaitable(value):
                                    value = await value
                            if on_merge is not None:
                                value = await on_merge(value)
                        except Skip:
                            value = skipped_value
                    try:
                        if value is not skipped_value:
                            self.events_total += 1
                            yield value
                    finally:
                        self.current_event = None
                        if event is not None and (do_ack or value is skipped_value):
                            last_stream_to_ack = event.ack()
                            message = event.message
                            tp = message.tp
                            offset = message.offset
                            on_stream_event_out(tp, offset, self, event, sensor_state)
                            if last_stream_to_ack:
                                on_message_out(tp, offset, message)
            except StopAsyncIteration:
                # As Faust's: the channel ran out (a stream over a list of values).
                return
            finally:
                self._channel_stop_iteration(channel)
                if started_by_aiter:
                    await self.stop()
                    self.service_reset()

    return QuickStream


def enable_passive_drain(stream: Any) -> None:
    """Let ``stream`` drain its channel in the background, feeding its processors (use 5)."""
    stream._enable_passive(aiter(stream.channel))


def remove_stream_processor(stream: Any, processor: Any) -> None:
    """Take ``processor`` off ``stream`` (use 5; Faust has ``add_processor`` only)."""
    stream._processors.remove(processor)
