"""`private_api.quick_stream_class`: the agent's stream without a loop turn per record hands
over what Faust's own stream iterator hands over, in the same order, with the same calls.

Each scenario (hypothesis) is a run of records and plain values put into a channel:
records of the current consumer generation and of an older one (Faust skips and acks
those), values a processor refuses with ``Skip``, records whose value is None, and
an error thrown into the channel. It runs on a real Faust app (no broker: nothing
is fetched, the channel's queue is fed directly) through Faust's stream and through
the quick one; what is recorded must be equal: each value the stream yields, each
processor call with the stream's current event and Faust's ``current_event()`` then,
each sensor call (in and out, message in and out) and each ack. Faust keeps two
iterators, the Cython one it runs and ``_py_aiter`` (the reference the quick one is
written from); the quick one is held to ``_py_aiter`` on every scenario, in what
Faust's two agree on (``as_both_faust_iterators_agree``), and, on every scenario
where Faust's two give the same, to both, call for call.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust
import pytest
from faust.exceptions import Skip
from faust.sensors import Sensor
from faust.types import TP, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequencer.adapters.faust import private_api

QuickStream = private_api.quick_stream_class()
TOPIC = "quick-stream-events"
END = "end of the scenario"


class Recorder(Sensor):
    """Every sensor call the stream makes, by record offset."""

    def __init__(self, trace: list) -> None:
        super().__init__()
        self.trace = trace

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        self.trace.append(("message in", offset))

    def on_stream_event_in(self, tp: TP, offset: int, stream: Any, event: Any) -> Any:
        self.trace.append(("event in", offset))
        return {"offset": offset}

    def on_stream_event_out(self, tp: TP, offset: int, stream: Any, event: Any, state: Any = None) -> None:
        self.trace.append(("event out", offset, state))

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        self.trace.append(("message out", offset))


#: One item of a scenario: ("record", value, current generation?) or ("plain", value).
items = st.one_of(
    st.tuples(st.just("record"), st.one_of(st.none(), st.integers(0, 9)), st.booleans()),
    st.tuples(st.just("plain"), st.integers(0, 9)),
)
#: A record value or plain value the processor refuses.
REFUSED = 3


async def run(stream_class: Any, scenario: list, *, python_reference: bool, throw: bool,
              acks: bool, acked_topic: bool, name: str) -> list:
    trace: list = []
    app = faust.App(name, broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    app.sensors.add(Recorder(trace))
    app.flow_control.resume()
    app.consumer_generation_id = 2
    if acked_topic:
        app.topics._acking_topics.add(TOPIC)
    channel = app.channel().__aiter__()
    stream = stream_class(channel, app=app, enable_acks=acks)

    def plain(value: Any) -> Any:
        event = stream.current_event
        trace.append(("plain processor", value, None if event is None else event.message.offset,
                      None if faust.current_event() is None else faust.current_event().message.offset))
        if value == REFUSED:
            raise Skip()
        return value

    async def coroutine(value: Any) -> Any:
        trace.append(("coroutine processor", value))
        return value

    stream.add_processor(plain)
    stream.add_processor(coroutine)
    for offset, item in enumerate(scenario):
        if item[0] == "record":
            _, value, current = item
            message = Message(TOPIC, 0, offset, 1.5, 0, [], b"k", value, None,
                              generation_id=2 if current else 1)
            channel.queue.put_nowait(faust.Event(app, b"k", value, message.headers, message))
        else:
            channel.queue.put_nowait(item[1])
    if throw:
        await channel.throw(KeyError("thrown into the channel"))
    else:
        channel.queue.put_nowait(END)
    iterator = stream._py_aiter() if python_reference else stream.__aiter__()
    try:
        async for value in iterator:
            if value == END:
                break
            event = stream.current_event
            trace.append(("yielded", value, None if event is None else event.message.offset))
    except KeyError as error:
        trace.append(("raised", str(error)))
    finally:
        await iterator.aclose()
        await stream.stop()
    trace.append(("events_total", stream.events_total))
    return trace


def skips(scenario: list) -> bool:
    """Whether a record of an older generation is in it: Faust skips it and, in ``_py_aiter``,
    acks it; its Cython iterator neither acks it nor calls the sensors for it. (The other
    known difference: a record acked on a topic without acks, after its consumer or
    when a processor refuses it, is reported by ``_py_aiter``'s message-out sensor,
    not by the Cython one's.)"""
    return any(item[0] == "record" and not item[2] for item in scenario)


def as_both_faust_iterators_agree(trace: list, scenario: list) -> list:
    """The trace without what Faust's two iterators do differently, beyond the skipped ack:
    ``_py_aiter`` hands a skipped record's sensor the state of the record before it (the
    Cython iterator, and the quick one, None) and leaves the task's current event as it
    was for a plain value (the Cython iterator, and the quick one, clear it)."""
    skipped = {offset for offset, item in enumerate(scenario) if item[0] == "record" and not item[2]}
    normal = []
    for entry in trace:
        if entry[0] == "event out" and entry[1] in skipped:
            entry = ("event out", entry[1], None)
        elif entry[0] == "plain processor" and entry[2] is None:
            entry = entry[:3]
        normal.append(entry)
    return normal


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=st.lists(items, max_size=12), throw=st.booleans(), acks=st.booleans(), acked_topic=st.booleans())
def test_the_quick_stream_hands_over_what_fausts_stream_does(scenario, throw, acks, acked_topic):
    async def both() -> tuple[list, list, list]:
        options = dict(throw=throw, acks=acks, acked_topic=acked_topic)
        quick = await run(QuickStream, scenario, python_reference=False, name="quick", **options)
        reference = await run(faust.Stream, scenario, python_reference=True, name="reference", **options)
        cython = await run(faust.Stream, scenario, python_reference=False, name="cython", **options)
        return quick, reference, cython

    quick, reference, cython = asyncio.run(both())
    assert as_both_faust_iterators_agree(quick, scenario) == as_both_faust_iterators_agree(reference, scenario)
    if as_both_faust_iterators_agree(reference, scenario) == as_both_faust_iterators_agree(cython, scenario):
        assert quick == cython  # where Faust's two iterators agree, all three do, to the last call
    else:
        # only where Faust's two are known to differ
        refused = any(item[0] == "record" and item[1] == REFUSED for item in scenario)
        assert skips(scenario) or (not acked_topic and (acks or refused))


def test_a_scenario_records_what_it_should():
    """The recording itself: a refused value, a skipped record and an ack are all in it."""
    scenario = [("record", 1, True), ("record", REFUSED, True), ("record", 5, False), ("plain", 7)]
    trace = asyncio.run(run(QuickStream, scenario, python_reference=False, throw=False, acks=True,
                            acked_topic=True, name="recorded"))
    assert ("yielded", 1, 0) in trace and ("yielded", 7, None) in trace
    assert ("plain processor", REFUSED, 1, 1) in trace and not any(t[:2] == ("yielded", REFUSED) for t in trace)
    assert ("event in", 2) not in trace and ("event out", 2, None) in trace  # an older generation: skipped, acked
    assert ("event out", 0, {"offset": 0}) in trace and ("message out", 0) in trace
    assert trace[-1] == ("events_total", 3)  # 1, 7 and the end marker


async def test_the_quick_stream_lets_the_loop_run_between_runs_of_records():
    """With thousands of records waiting, other tasks still run every STREAM_RECORDS_IN_A_ROW records."""
    app = faust.App("quick-turns", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    app.flow_control.resume()
    channel = app.channel().__aiter__()
    stream = QuickStream(channel, app=app)
    total = 10 * private_api.STREAM_RECORDS_IN_A_ROW
    for value in range(total):
        channel.queue.put_nowait(value)
    turns = 0
    done = False

    async def other_task() -> None:
        nonlocal turns
        while not done:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_task())
    seen = []
    async for value in stream:
        seen.append(value)
        if len(seen) == total:
            break
    done = True
    await other
    await stream.stop()
    assert seen == list(range(total))
    assert total // private_api.STREAM_RECORDS_IN_A_ROW - 1 <= turns <= total // 10


@pytest.mark.parametrize("fast_drain", [True, False])
def test_the_worker_app_streams_through_it_with_the_fast_drain_only(tmp_path, fast_drain):
    from sequencer.adapters.faust.worker import create_app
    from sequencer.domain import SequencerConfig
    from sequencer.settings import Settings

    settings = Settings.from_env({"SEQUENCER_STATE_DIR": str(tmp_path), "SEQUENCER_FAST_DRAIN": str(fast_drain).lower()})
    app = create_app(settings, SequencerConfig(), web_enabled=False)
    stream = app.stream(app.channel())
    assert (type(stream).__name__ == "QuickStream") is fast_drain
