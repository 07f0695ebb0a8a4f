"""Batches of a Faust stream handed over when a burst has settled, not at a fixed tick.

The worker takes its batches here, from the agent's stream, unless
``SEQUENCER_DIRECT_INTAKE`` is on: then the events topic's records skip
Faust's stream and the same batches come from `record_intake`.

Faust's ``Stream.take_events(max_, within)`` waits ``within`` seconds from
the end of the previous batch, whatever arrived meanwhile: a tick that runs
independently of the records. A burst of 200 day events (``streamer feed``:
one trading day of 200 streams each second) arrives at a random moment of that
tick, so it waited 0 to 50 ms before it was folded, and when the tick fell in
the middle of the burst its tail waited for the next tick behind the first
part's commit (docs/benchmarks.md, "Batches handed over when a burst settles").

``take_bursts`` hands a batch over when the first of it has arrived and then
``settle`` seconds pass without a new record, when ``within`` seconds have
passed since its first record, or when it holds ``max_`` records, whichever
comes first. Under a steady flow records keep coming within ``settle`` of each
other, so batches still grow to ``max_`` or ``within`` (the rate is kept);
a burst is folded a few milliseconds after its last record.

Apart from the wait it does what ``take_events`` does, with the same Faust
calls (faust-streaming 0.15.x): a processor adds each event to the buffer
while the stream is drained passively; adding waits while a batch is being
consumed and while a full buffer is not yet taken; each event is acked after
its batch's consumer returns. The two private Faust names it needs are in
`private_api` (use 5).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from sequencer.adapters.faust.private_api import enable_passive_drain, remove_stream_processor

#: Seconds without a new record after which a partial batch is handed over.
#: The records of one fetch reach the stream microseconds apart; a burst
#: published at once spans one to three fetches of the consumer, and the
#: embedded broker answers a fetch after its full wait (fetch_wait.py: 25 ms),
#: so a later fetch of the same burst comes after the first is folded.
SETTLE_S = 0.004


async def take_bursts(stream: Any, max_: int, within: float, settle: float = SETTLE_S,
                      acks: bool = True) -> AsyncIterator[list]:
    """Yield lists of up to ``max_`` events of ``stream`` (see the module's docstring).

    ``acks=False`` leaves the events unacked: for a topic whose acks are off
    (``app.topic(acks=False)``), where the consumer tracks no offsets of them
    and an ack only runs the sensors, two locks and a settings lookup per
    event; whoever reads such a topic commits its offsets itself."""
    events: list = []
    arrived = asyncio.Event()  # the buffer holds at least one event
    full = asyncio.Event()  # the buffer holds max_ events
    consumed = asyncio.Event()  # a full buffer was taken
    consuming: asyncio.Future | None = None  # set while a batch is with the consumer
    first_at = 0.0
    acks_before = stream.enable_acks

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming, first_at
        if consuming is not None:
            try:
                await consuming
            finally:
                consuming = None
        event = stream.current_event
        if event is None:
            raise RuntimeError("take_bursts: the stream has no current event")
        if not events:
            first_at = time.monotonic()
            arrived.set()
        events.append(event)
        if len(events) >= max_:
            full.set()
            consumed.clear()
            await stream.wait(consumed)  # never more than max_ in a batch
        return value

    queue = getattr(stream.channel, "queue", None)  # the stream's channel: what has arrived and is not taken yet

    async def settled() -> None:
        """Wait, once the first event is in, until the burst settles, ``within`` passes or the buffer fills.

        Settled means: no new event for ``settle`` seconds *and* none waiting in the
        stream's channel. A settle interval in which the loop ran other work (a
        commit's sends, the consumer handing over a fetch) added nothing to the
        batch while the channel held thousands of records: a backlog was cut into
        batches of about a thousand instead of ``max_`` (docs/benchmarks.md,
        "Records straight to the batches, batches folded one ahead")."""
        seen = len(events)
        while not full.is_set():
            left = first_at + within - time.monotonic()
            if left <= 0:
                return
            await stream.wait_for_stopped(full, timeout=min(settle, left))
            if stream.should_stop:
                return
            if len(events) == seen and (queue is None or queue.empty()):
                return
            seen = len(events)

    stream.enable_acks = False  # each event is acked after its batch's consumer returns
    stream.add_processor(add_to_buffer)
    enable_passive_drain(stream)
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(arrived, timeout=within)
            if not events:
                continue
            await settled()
            gate = consuming = asyncio.get_running_loop().create_future()
            batch = list(events)
            try:
                yield batch
            finally:
                events.clear()
                arrived.clear()
                if acks:
                    for event in batch:
                        await stream.ack(event)
                gate.set_result(None)
                full.clear()
                consumed.set()
    finally:
        stream.enable_acks = acks_before
        remove_stream_processor(stream, add_to_buffer)
