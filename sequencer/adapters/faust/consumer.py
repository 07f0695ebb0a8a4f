"""A Faust consumer with a cheaper per-message hand-off to the stream.

Faust's ``Consumer._drain_messages`` awaits, for every message,
``wait_first(callback(message), suspend_flow.wait())``: two new tasks, an
``asyncio.wait`` and a cancellation, about three event-loop turns per message.
On this project's machine that caps a stream near 10k events/s whatever the
agent does (bench/bench_stream_shapes.py, docs/benchmarks.md). This subclass
awaits the callback directly while the flow is active and keeps the race with
``suspend_flow`` only while it is suspended (a rebalance). A callback already
blocked on a full stream buffer when a rebalance starts is not interrupted;
Faust clears the buffers on rebalance, which unblocks it.

It overrides a private method of faust-streaming 0.15.x; ``install`` refuses
other versions, so an upgrade falls back to Faust's own consumer.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

SUPPORTED_FAUST = ("0.15.",)


def fast_drain_consumer_class() -> type:
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


def install(app: Any) -> bool:
    """Use the fast consumer for ``app``; False (and Faust's own) on other Faust versions."""
    import faust

    if not faust.__version__.startswith(SUPPORTED_FAUST):
        logger.warning("faust-streaming %s: fast drain not verified for it; using Faust's consumer",
                       faust.__version__)
        return False
    app.transport.Consumer = fast_drain_consumer_class()
    return True
