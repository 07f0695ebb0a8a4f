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
   the flow is active (docs/benchmarks.md). Off with ``SEQUENCER_FAST_DRAIN=false``.
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




def fast_drain_consumer_class() -> type:
    """Faust's aiokafka consumer with ``_drain_messages`` replaced (use 3).

    A callback already blocked on a full stream buffer when a rebalance starts is
    not interrupted; Faust clears the buffers on rebalance, which unblocks it."""
    from faust.transport.consumer import CONSUMER_FETCHING
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaFaustConsumer

    class FastDrainConsumer(AIOKafkaFaustConsumer):  # type: ignore[misc, valid-type]
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
            yield_every = 100  # let other tasks (heartbeats, the agent) run
            since_yield = 0
            try:
                while not (consumer_should_stop() or fetcher_should_stop()):
                    set_flag(CONSUMER_FETCHING)
                    ait: Any = getmany(timeout=1.0)
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
                                if suspended():
                                    await self.wait_first(callback(message), self.suspend_flow.wait())
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


def install_fast_drain(app: Any) -> bool:
    """Use the fast consumer for ``app`` (use 3); False, and Faust's own, on another major.minor."""
    import faust

    if not same_minor(faust.__version__):
        logger.warning("faust-streaming %s: fast drain not verified for it (checked on %s); "
                       "using Faust's consumer", faust.__version__, FAUST_CHECKED)
        return False
    app.transport.Consumer = fast_drain_consumer_class()
    return True


def enable_passive_drain(stream: Any) -> None:
    """Let ``stream`` drain its channel in the background, feeding its processors (use 5)."""
    stream._enable_passive(aiter(stream.channel))


def remove_stream_processor(stream: Any, processor: Any) -> None:
    """Take ``processor`` off ``stream`` (use 5; Faust has ``add_processor`` only)."""
    stream._processors.remove(processor)
