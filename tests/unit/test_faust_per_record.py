"""The events topic's schema and the worker's monitor (sequencer.adapters.faust.per_record).

The worker folds the bytes of each record itself, so the schema must hand
them over exactly as they came, whatever they are (not UTF-8, empty, None);
the monitor must drop only the per-record bookkeeping and keep Faust's other
figures.
"""

from __future__ import annotations

import asyncio

import faust
from faust.types import TP, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.adapters.faust.per_record import EventBytesSchema, QuietMonitor
from sequencer.adapters.faust.worker import create_app
from sequencer.domain import SequencerConfig
from sequencer.settings import Settings

TP0 = TP("day-events", 0)


def _message(key: bytes | None, value: bytes | None, offset: int = 7) -> Message:
    return Message(TP0.topic, TP0.partition, offset, 1.5, 0, [], key, value, None)


def _decode(schema: faust.Schema, message: Message):
    app = faust.App("per-record-test", broker="kafka://localhost:1")
    return asyncio.run(schema.compile(app)(message, propagate=True))


@settings(max_examples=200, deadline=None)
@given(key=st.none() | st.binary(max_size=64), value=st.none() | st.binary(max_size=512))
def test_the_schema_hands_over_the_records_own_bytes(key, value):
    message = _message(key, value)
    event = _decode(EventBytesSchema(), message)
    assert event.key is key and event.value is value
    assert event.message is message


def test_the_schema_agrees_with_fausts_raw_serializer_on_ordinary_records():
    raw = faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    for key, value in [(b"ES1", b"\x85\xa6stream\xa3ES1"), (b"", b"{}"), (b"\xff\xfe", b"\x00" * 10)]:
        ours, theirs = _decode(EventBytesSchema(), _message(key, value)), _decode(raw, _message(key, value))
        assert (ours.key, ours.value) == (theirs.key, theirs.value)


@given(headers=st.lists(st.tuples(st.text(max_size=8), st.binary(max_size=8)), max_size=4))
def test_the_events_headers_are_fausts(headers):
    """Without headers (an empty list) too: the event's are then ``{}``, as Faust makes them."""
    raw = faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    message = Message(TP0.topic, TP0.partition, 7, 1.5, 0, headers, b"ES1", b"{}", None)
    ours, theirs = _decode(EventBytesSchema(), message), _decode(raw, message)
    assert ours.headers == theirs.headers == dict(headers) and type(ours.headers) is dict


def test_the_monitor_skips_per_record_counts_and_keeps_the_others():
    monitor = QuietMonitor()
    message = _message(b"ES1", b"x")
    monitor.on_message_in(TP0, 7, message)
    assert monitor.on_stream_event_in(TP0, 7, object(), None) is None
    monitor.on_stream_event_out(TP0, 7, object(), None, None)
    monitor.on_message_out(TP0, 7, message)
    assert monitor.messages_received_total == 0 and monitor.events_total == 0
    monitor.on_tp_commit({TP0: 8})
    assert monitor.tp_committed_offsets[TP0] == 8


def test_the_worker_app_uses_both(tmp_path):
    settings_ = Settings.from_env({"SEQUENCER_STATE_DIR": str(tmp_path)})
    app = create_app(settings_, SequencerConfig(), web_enabled=False)
    assert isinstance(app.monitor, QuietMonitor)
    (agent,) = [a for a in app.agents.values() if settings_.topic_events in a.channel.topics]
    assert isinstance(agent.channel.schema, EventBytesSchema)


def test_use_uvloop_makes_the_processes_new_loops_uvloops():
    """Run in a fresh interpreter: the policy is process-wide."""
    import subprocess
    import sys

    code = ("import asyncio, uvloop\n"
            "from sequencer.cli.worker_cmd import use_uvloop\n"
            "assert not isinstance(asyncio.new_event_loop(), uvloop.Loop)\n"
            "assert use_uvloop()\n"
            "assert isinstance(asyncio.new_event_loop(), uvloop.Loop)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_partition_missing_from_the_producers_metadata_is_asked_for_again():
    """A worker started before its topics existed kept folding the same batch
    again and again: aiokafka refused the changelog partition as unknown and
    refreshes its metadata only every few minutes on its own."""
    from sequencer.adapters.faust.commit_ports import FaustProducerPort, PartitionNotInMetadata
    from sequencer.app.batch_commit import Outgoing

    class Cluster:
        def partitions_for_topic(self, topic):
            return {0, 1, 2}

    class Client:
        refreshed = 0
        cluster = Cluster()

        def force_metadata_update(self):
            Client.refreshed += 1

    class Batch:
        def append(self, **kwargs):
            return object()

        def record_count(self):
            return 1

    class AioProducer:
        client = Client()

        def create_batch(self):
            return Batch()

        async def send_batch(self, batch, topic, *, partition):
            raise AssertionError("Unrecognized partition")

    class FaustProducer:
        def _ensure_producer(self):
            return AioProducer()

    class App:
        producer = FaustProducer()

    port = FaustProducerPort(App())
    try:
        asyncio.run(port.send_batch("states-changelog", 3, [Outgoing("states-changelog", b"ES1", b"{}")]))
    except PartitionNotInMetadata as error:
        assert "states-changelog partition 3" in str(error) and "3 partitions known" in str(error)
    else:
        raise AssertionError("the unknown partition was not reported")
    assert Client.refreshed == 1
