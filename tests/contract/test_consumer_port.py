"""One contract for `gap_repair.ConsumerPort`, run against every implementation:
the in-memory fake (tests/support/fake_consumer.py) and the worker's Faust port
(`stream_app.FaustConsumerPort`, with the worker's own consumer classes) on the
embedded broker, its records handed to a Faust stream or, as the worker takes
them, to its record intake (`record_intake`), the way eventsourcing runs one
recorder suite over every backend.

What `InputOffsets` (the hole repair, the stall watch and the commit of the
batch commit's step 5) relies on, and so what is tested here:

- ``assigned()`` names this consumer's partitions of the events topic, as
  ``topic:partition``, and nothing else (not the changelog topics Faust also
  assigns);
- ``highwater(tp)`` is the partition's end once the consumer fetched from it,
  and None for a partition it has not;
- ``position(tp)`` is the next offset the consumer hands out;
- ``seek(tp, offset)`` makes it hand out the records from ``offset`` again
  (how a hole or a failed batch is read again);
- ``commit(offsets)`` says True and ``group_offsets()`` reads the committed
  offsets back (a restart resumes there); neither moves the position;
- ``read_range(tp, start, stop)`` gives exactly the records
  ``start <= offset < stop`` with their keys and values, read aside: the
  position and the group's offsets stay as they were;
- ``log_start(tp)`` is the partition's first offset, 0 until the broker
  deletes records (the embedded broker cannot: the deletion case is the fake's
  and tests/unit/test_gap_repair.py's).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import pytest
import pytest_asyncio

from sequencer.app.input_offsets import ConsumerPort
from tests.support.fake_consumer import InMemoryConsumerPort

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARTITIONS = 2
#: The log of partition 0 (partition 1 stays empty).
LOG = [(f"K{offset}".encode(), f"value {offset}".encode()) for offset in range(6)]
WAIT_S = 60.0


@dataclass
class Subject:
    """A port under test, its events topic, and how to see what its consumer hands out."""

    port: ConsumerPort
    topic: str
    #: The next ``count`` offsets of partition 0 that the consumer hands to the stream.
    delivered: Callable[[int], Awaitable[list[int]]]

    @property
    def tp(self) -> str:
        return f"{self.topic}:0"

    async def settle(self) -> None:
        """Until everything from the current position to the end was handed out."""
        left = len(LOG) - await self.port.position(self.tp)
        if left > 0:
            await self.delivered(left)


async def in_memory_subject() -> AsyncIterator[Subject]:
    topic = "events"
    port = InMemoryConsumerPort(topic, {0: LOG, 1: []})

    async def delivered(count: int) -> list[int]:
        return [record.offset for record in port.deliver(f"{topic}:0", count)]

    yield Subject(port, topic, delivered)


async def faust_subject(bootstrap: str, with_intake: bool = False) -> AsyncIterator[Subject]:
    """A Faust app built as the worker builds its consumer (fast drain, short fetch wait,
    acks off on the events topic, a table so changelog partitions are assigned too),
    with an agent that only notes the offsets it is handed."""
    import faust
    from aiokafka import AIOKafkaProducer

    from sequencer.adapters.faust.private_api import install_fast_drain
    from sequencer.adapters.faust.record_intake import RecordIntake
    from sequencer.adapters.faust.fetch_wait import install as install_short_fetch_wait
    from sequencer.settings import Settings
    from sequencer.adapters.faust.worker import FaustConsumerPort
    from sequencer.adapters.kafka.topics import create_topics

    name = f"contract{uuid.uuid4().hex[:8]}"
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "SEQUENCER_CONFIG_NAME": name,
                                  "SEQUENCER_TOPIC_EVENTS": f"{name}.events"})
    topic = settings.topic_events
    await create_topics(bootstrap, {topic: PARTITIONS})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        for key, value in LOG:  # one record per produce batch: Tansu's listed end is right then
            await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()

    app = faust.App(settings.app_id, broker=f"kafka://{bootstrap}", store="memory://", web_enabled=False,
                    consumer_auto_offset_reset="earliest", topic_partitions=PARTITIONS,
                    broker_session_timeout=10, broker_heartbeat_interval=1)
    # The worker's records go from the drain to its record intake, not to the agent's stream.
    intake = RecordIntake()
    install_fast_drain(app, {topic: intake} if with_intake else None)
    install_short_fetch_wait(app)
    events = app.topic(topic, key_serializer="raw", value_serializer="raw", partitions=PARTITIONS, acks=False)
    app.Table("contract-table", default=None, key_type=bytes, value_type=bytes, partitions=PARTITIONS)
    handed: asyncio.Queue[int] = asyncio.Queue()

    @app.agent(events)
    async def note_offsets(stream: Any) -> None:
        async for event in stream.events():
            if event.message.partition == 0:
                handed.put_nowait(event.message.offset)

    async def delivered(count: int) -> list[int]:
        if not with_intake:
            return [await asyncio.wait_for(handed.get(), WAIT_S) for _ in range(count)]
        found: list[int] = []
        while len(found) < count:
            batch = await asyncio.wait_for(intake.take(count - len(found), within=0.05, settle=0.004), WAIT_S)
            found += [record.offset for record in batch if record.partition == 0]
        return found

    await app.start()
    try:
        subject = Subject(FaustConsumerPort(app, settings), topic, delivered)
        assert await subject.delivered(len(LOG)) == list(range(len(LOG)))  # the first fetch, from earliest
        yield subject
    finally:
        await app.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module",
                        params=[pytest.param("in-memory"), pytest.param("faust", marks=pytest.mark.broker),
                                pytest.param("faust-intake", marks=pytest.mark.broker)])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    if request.param == "in-memory":
        made = in_memory_subject()
    else:
        made = faust_subject(request.getfixturevalue("kafka_bootstrap"), with_intake=request.param == "faust-intake")
    async for value in made:
        yield value


async def test_assigned_names_only_the_events_topics_partitions(subject: Subject) -> None:
    assert sorted(subject.port.assigned()) == [f"{subject.topic}:{p}" for p in range(PARTITIONS)]


async def test_highwater_is_the_end_once_fetched_and_none_for_a_partition_never_fetched(subject: Subject) -> None:
    await subject.settle()
    assert subject.port.highwater(subject.tp) == len(LOG)
    assert subject.port.highwater(f"{subject.topic}-not-assigned:0") is None


async def test_position_is_the_next_offset_handed_out(subject: Subject) -> None:
    await subject.settle()
    assert await subject.port.position(subject.tp) == len(LOG)


async def test_seek_back_hands_out_the_records_again_from_that_offset(subject: Subject) -> None:
    await subject.settle()
    await subject.port.seek(subject.tp, 2)
    assert await subject.delivered(len(LOG) - 2) == list(range(2, len(LOG)))
    assert await subject.port.position(subject.tp) == len(LOG)


async def test_commit_is_read_back_by_group_offsets_and_leaves_the_position(subject: Subject) -> None:
    await subject.settle()
    assert await subject.port.commit({subject.tp: 3}) is True
    assert (await subject.port.group_offsets()).get(subject.tp) == 3
    assert await subject.port.commit({subject.tp: len(LOG)}) is True
    committed = await subject.port.group_offsets()
    assert committed.get(subject.tp) == len(LOG)
    assert all(tp.startswith(f"{subject.topic}:") for tp in committed)
    assert await subject.port.position(subject.tp) == len(LOG)


async def test_log_start_is_0_on_a_log_nothing_was_deleted_from(subject: Subject) -> None:
    await subject.settle()
    assert await subject.port.log_start(subject.tp) == 0


async def test_read_range_gives_exactly_the_records_in_range_read_aside(subject: Subject) -> None:
    await subject.settle()
    committed = await subject.port.group_offsets()
    records = await subject.port.read_range(subject.tp, 1, 4)
    assert [(r.partition_key, r.offset, r.key, r.value) for r in records] == [
        (subject.tp, offset, *LOG[offset]) for offset in (1, 2, 3)]
    everything = await subject.port.read_range(subject.tp, 0, len(LOG))
    assert [(r.key, r.value) for r in everything] == LOG
    assert await subject.port.position(subject.tp) == len(LOG)
    assert await subject.port.group_offsets() == committed
