"""The worker's batches: a burst is handed over once it settles, a steady flow still
makes large batches, a batch never holds more than its maximum, and its events are
acked only after the batch was consumed.

The stream is a stand-in with the few Faust calls `take_bursts` makes (a
processor per value, the passive drain, mode's waits); the worker over the real
Faust stream and the embedded broker is tests/integration/test_streaming.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mode.utils.futures import maybe_async

from sequencer.adapters.faust.take_bursts import take_bursts


class FakeEvent:
    def __init__(self, value: int) -> None:
        self.value = value


class FakeStream:
    """Values are fed through the stream's processors one by one, as Faust's stream does."""

    def __init__(self) -> None:
        self.enable_acks = True
        self.current_event: FakeEvent | None = None
        self._processors: list = []
        self.should_stop = False
        self.channel = self  # take_bursts only hands aiter(channel) to the passive drain
        self.acked: list[int] = []

    def __aiter__(self) -> "FakeStream":
        return self

    async def __anext__(self) -> Any:
        raise StopAsyncIteration

    def add_processor(self, processor: Any) -> None:
        self._processors.append(processor)

    def _enable_passive(self, channel: Any) -> None:
        pass

    async def wait(self, event: asyncio.Event) -> None:
        await event.wait()

    async def wait_for_stopped(self, event: asyncio.Event, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return self.should_stop

    async def ack(self, event: FakeEvent) -> None:
        self.acked.append(event.value)

    async def feed(self, value: int) -> None:
        self.current_event = FakeEvent(value)
        for processor in self._processors:  # as Faust's stream iterator calls its processors
            value = await maybe_async(processor(value))
        self.current_event = None


async def collect(stream: FakeStream, max_: int, within: float, settle: float,
                  batches: list[tuple[float, list[int]]], hold_s: float = 0.0, acks: bool = True) -> None:
    async for batch in take_bursts(stream, max_, within, settle, acks=acks):
        batches.append((time.monotonic(), [event.value for event in batch]))
        assert not set(event.value for event in batch) & set(stream.acked)  # acked after, not before
        await asyncio.sleep(hold_s)


async def stop(consumer: asyncio.Future) -> None:
    consumer.cancel()
    try:
        await consumer
    except asyncio.CancelledError:
        pass


async def feed_values(stream: FakeStream, values: range, gap_s: float) -> None:
    for value in values:
        await stream.feed(value)
        await asyncio.sleep(gap_s)


async def test_a_burst_is_handed_over_when_it_settles_not_at_the_end_of_within() -> None:
    stream, batches = FakeStream(), []
    consumer = asyncio.ensure_future(collect(stream, 1000, within=2.0, settle=0.02, batches=batches))
    await asyncio.sleep(0.05)  # a quiet topic first: the burst comes at a random moment
    started = time.monotonic()
    await feed_values(stream, range(200), gap_s=0)
    await asyncio.sleep(0.5)
    await stop(consumer)
    assert [values for _, values in batches] == [list(range(200))]  # the whole burst in one batch
    assert batches[0][0] - started < 1.0  # well before within (2 s) ran out
    assert stream.acked == list(range(200))
    assert stream._processors == [] and stream.enable_acks  # left as found


async def test_a_steady_flow_grows_its_batch_until_within() -> None:
    stream, batches = FakeStream(), []
    consumer = asyncio.ensure_future(collect(stream, 10_000, within=0.3, settle=0.05, batches=batches))
    await asyncio.sleep(0.01)  # the processor is in place (Faust's stream drains only then)
    await feed_values(stream, range(60), gap_s=0.01)  # 10 ms apart, under the settle of 50 ms
    await asyncio.sleep(0.6)  # the last batch's within (0.3 s) runs out
    await stop(consumer)
    sizes = [len(values) for _, values in batches]
    assert sum(sizes) == 60 and [v for _, values in batches for v in values] == list(range(60))
    assert max(sizes) >= 15  # not one batch per record: held until within (0.3 s of 10 ms gaps)


async def test_a_batch_never_holds_more_than_its_maximum_and_nothing_is_lost() -> None:
    stream, batches = FakeStream(), []
    consumer = asyncio.ensure_future(collect(stream, 7, within=5.0, settle=1.0, batches=batches, hold_s=0.01))
    await asyncio.sleep(0.01)  # the processor is in place (Faust's stream drains only then)
    await feed_values(stream, range(50), gap_s=0)
    await asyncio.sleep(0.1)
    await stop(consumer)
    assert [len(values) for _, values in batches][:7] == [7] * 7  # full batches go at once, no wait
    assert [v for _, values in batches for v in values] == list(range(49))  # the 50th waits for settle


async def test_without_acks_every_event_still_comes_and_none_is_acked() -> None:
    """The worker's topic has acks off: its batches flow the same, nothing is acked."""
    stream, batches = FakeStream(), []
    consumer = asyncio.ensure_future(collect(stream, 50, within=0.2, settle=0.02, batches=batches, acks=False))
    await asyncio.sleep(0.05)  # the consumer's processor is in place
    await feed_values(stream, range(120), gap_s=0)
    await asyncio.sleep(0.5)
    await stop(consumer)
    assert [v for _, values in batches for v in values] == list(range(120))
    assert all(len(values) <= 50 for _, values in batches)
    assert stream.acked == []
    assert stream._processors == [] and stream.enable_acks  # left as found


class FakeChannel:
    """The stream's channel: its queue holds what arrived and the stream has not taken yet."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    def __aiter__(self) -> "FakeChannel":
        return self

    async def __anext__(self) -> Any:
        raise StopAsyncIteration


async def test_a_batch_is_not_handed_over_while_records_wait_in_the_channel() -> None:
    # A backlog: the loop was busy elsewhere for a settle interval, so nothing was
    # added to the batch, but the channel still holds records: not settled.
    stream, batches = FakeStream(), []
    stream.channel = FakeChannel()
    consumer = asyncio.ensure_future(collect(stream, 1000, within=2.0, settle=0.02, batches=batches))
    await asyncio.sleep(0.01)
    await feed_values(stream, range(10), gap_s=0)
    stream.channel.queue.put_nowait("record 10, not taken yet")
    await asyncio.sleep(0.1)  # five settle intervals with nothing new in the batch
    assert batches == []
    stream.channel.queue.get_nowait()
    await feed_values(stream, range(10, 20), gap_s=0)
    await asyncio.sleep(0.1)
    await stop(consumer)
    assert [values for _, values in batches] == [list(range(20))]
