"""`sequencer.adapters.faust.private_api`: every private Faust use in one module, checked
on one version.

What an upgrade relies on: the suite fails, saying to re-read the list, when the
installed faust-streaming (or aiokafka) is another major.minor than the one the
list was checked on; each private name the list uses still exists; no other
module of the Faust adapter reaches into a private attribute; the fast-drain
consumer is installed on the checked version and refused on any other (Faust's
own consumer stays). The fast drain's delivery (every record once, in order,
and again after a seek back) is tested on the embedded broker by
tests/contract/test_consumer_port.py, whose Faust app installs it.
"""

from __future__ import annotations

import ast
import asyncio
import logging
from importlib.metadata import version
from pathlib import Path

import faust
import pytest
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Producer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaFaustConsumer

from sequencer.adapters.faust import private_api

FAUST_ADAPTER = Path(private_api.__file__).parent
#: Modules of the Faust adapter that still use a private API outside private_api, and why.
#: The test below fails when one no longer does, so the list only shrinks.
KNOWN_ELSEWHERE = {
    "fetch_wait.py": "the short fetch wait (private_api's use 4); to move into private_api",
}


def app(name: str) -> faust.App:
    return faust.App(name, broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)


def test_the_installed_faust_is_the_version_the_private_uses_were_checked_on():
    installed = version("faust-streaming")
    assert private_api.same_minor(installed), (
        f"faust-streaming {installed} is installed, the private uses listed in "
        f"sequencer/adapters/faust/private_api.py were checked on {private_api.FAUST_CHECKED}: "
        f"re-check each of them against the new source, then update FAUST_CHECKED")
    installed = version("aiokafka")
    assert private_api.same_minor(installed, private_api.AIOKAFKA_CHECKED), (
        f"aiokafka {installed} is installed, the private uses listed in "
        f"sequencer/adapters/faust/private_api.py were checked on {private_api.AIOKAFKA_CHECKED}: "
        f"re-check each of them against the new source, then update AIOKAFKA_CHECKED")


def test_same_minor_compares_major_and_minor_only():
    assert private_api.same_minor("0.15.3") and private_api.same_minor("0.15.0")
    assert private_api.same_minor("0.15.10")
    assert not private_api.same_minor("0.16.0") and not private_api.same_minor("1.15.3")
    assert not private_api.same_minor("0.1.53")


def test_each_private_name_the_list_uses_still_exists():
    consumer = app("private-names").consumer  # built, not started: no broker needed
    for name in ("_commit", "_drain_messages", "_add_gap", "_new_consumer_thread"):
        assert callable(getattr(AIOKafkaFaustConsumer, name, None)), name
    for name in ("_stopped", "_read_offset", "_commit_every", "_n_acked", "_buffered_partitions"):
        assert hasattr(consumer, name), name
    assert callable(consumer._get_active_partitions) and callable(consumer.on_buffer_drop)
    buffer = app("private-producer-names").producer.buffer  # built, not started
    assert isinstance(buffer.pending, asyncio.Queue) and buffer.max_messages > 0
    assert callable(buffer.wait_until_ebb)
    assert callable(getattr(Producer, "_ensure_producer", None))
    assert callable(getattr(AIOKafkaConsumerThread, "_create_worker_consumer", None))
    stream = app("private-stream-names").stream(app("private-stream-channel").channel())
    assert callable(getattr(stream, "_enable_passive", None)) and isinstance(stream._processors, list)
    for name in ("_py_aiter", "_set_current_event", "_channel_stop_iteration", "_on_stream_event_in",
                 "_on_stream_event_out", "_on_message_in", "_on_message_out", "maybe_start"):
        assert callable(getattr(stream, name, None)), name
    assert callable(stream._active_agens.add) and stream._skipped_value is not None  # a WeakSet
    assert hasattr(stream, "_finalized")
    conductor = app("private-conductor-names").topics
    assert isinstance(conductor._tp_to_callback, dict) and isinstance(conductor._tp_to_callback_lock, asyncio.Lock)
    for name in ("_wait_next_records", "_to_message", "perform_seek"):
        assert callable(getattr(consumer, name, None)), name
    # The public ones it names instead.
    assert callable(AIOKafkaFaustConsumer.seek_wait) and callable(faust.Table.send_changelog)


def private_reaches(source: str) -> list[str]:
    """``x._name`` where x is not ``self`` / ``cls``, and ``super()._name``: a reach into
    another object's (or a base class's) private attribute."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})):
            found.append(f"{ast.unparse(node)} (line {node.lineno})")
    return found


def test_no_other_faust_adapter_module_uses_a_private_api():
    reaching = {}
    for path in sorted(FAUST_ADAPTER.glob("*.py")):
        if path.name != "private_api.py":
            found = private_reaches(path.read_text(encoding="utf-8"))
            if found:
                reaching[path.name] = found
    assert set(reaching) == set(KNOWN_ELSEWHERE), reaching


def test_the_private_reach_check_can_fail():
    assert private_reaches("def f(app):\n    return app.consumer._commit({})\n")
    assert private_reaches("class C(B):\n    def m(self):\n        return super()._make()\n")
    assert not private_reaches("class C:\n    def m(self):\n        return self._x, type(self).__name__\n")


def test_installed_on_the_checked_faust_version():
    target = app("fast-drain-on")
    assert private_api.install_fast_drain(target) is True
    installed = target.transport.Consumer
    assert installed is not AIOKafkaFaustConsumer and issubclass(installed, AIOKafkaFaustConsumer)
    assert "_drain_messages" in vars(installed)  # the one method it replaces
    assert isinstance(target.consumer, installed)


@pytest.mark.parametrize("other", ["0.16.0", "1.0.0", "0.14.9"])
def test_refused_on_another_faust_version_which_keeps_its_own_consumer(monkeypatch, caplog, other):
    monkeypatch.setattr(faust, "__version__", other)
    target = app(f"fast-drain-off-{other}")
    with caplog.at_level(logging.WARNING, logger=private_api.__name__):
        assert private_api.install_fast_drain(target) is False
    assert target.transport.Consumer is AIOKafkaFaustConsumer
    assert f"faust-streaming {other}: fast drain not verified" in caplog.text


async def test_the_quick_buffer_check_waits_as_faust_does_only_over_the_limit(monkeypatch):
    target = app("quick-ebb")
    assert private_api.install_fast_drain(target) is True
    buffer = target.producer.buffer
    flushed: list[int] = []

    async def flush_atmost(most):
        flushed.append(most)
        return 0

    monkeypatch.setattr(buffer, "flush_atmost", flush_atmost)
    for _ in range(buffer.max_messages):
        buffer.pending.put_nowait(object())
    await buffer.wait_until_ebb()  # at the limit, not over it: no wait
    assert flushed == []
    buffer.pending.put_nowait(object())
    await buffer.wait_until_ebb()  # over it: Faust's own wait, which flushes
    assert flushed == [buffer.max_messages]


async def test_a_drain_with_every_partition_paused_for_a_full_buffer_goes_on_when_one_drops():
    target = app("buffer-drop")
    private_api.install_fast_drain(target)
    consumer = target.consumer
    tp = faust.types.TP("events", 0)
    consumer._active_partitions = {tp}
    assert await asyncio.wait_for(consumer._wait_for_buffer_drop(), 0.1) is False  # a partition is active

    consumer.on_buffer_full(tp)  # what the conductor calls when the stream's buffer is full
    assert not consumer._get_active_partitions()
    waiting = asyncio.ensure_future(consumer._wait_for_buffer_drop())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # Faust would sleep a second here; this waits for the drop
    consumer.on_buffer_drop(tp)
    assert await asyncio.wait_for(waiting, 0.1) is True
    assert consumer._get_active_partitions() == {tp}
