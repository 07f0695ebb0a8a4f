"""The batch commit's changelog records on the real embedded broker: with
``last_changelog_record_alone`` (SEQUENCER_CHANGELOG_SINGLE_RECORD_BATCHES, the
default) the end offset the broker lists for every changelog partition is the
number of records on it, which is where Faust's table recovery stops reading.

The second test shows why the setting exists: the same commit without it
leaves the listed end short on this broker (if a broker version lists the true
end, that test fails and says so: the setting could then default to false)."""

from __future__ import annotations

import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from sequencer.app.batch_commit import BatchCommit, Outgoing
from sequencer.domain import SequencerConfig
from sequencer.adapters.faust.commit_ports import FaustProducerPort
from sequencer.adapters.faust.live_state import LiveStates
from sequencer.app.processor import EventProcessor
from sequencer.app.records import SourceRecord
from sequencer.adapters.kafka.topics import create_topics

pytestmark = [pytest.mark.broker]

CONFIG = SequencerConfig()
PARTITIONS = 2
STREAMS = ["ES1", "NQ1", "YM1", "CL1", "GC1", "NG1"]  # session S1: the 07:30 slot below is theirs


class _TransportProducer:
    """What `FaustProducerPort` uses of Faust's transport producer, over a plain aiokafka producer."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    def _ensure_producer(self) -> AIOKafkaProducer:
        return self.producer

    def key_partition(self, topic: str, key: bytes) -> TopicPartition:
        return TopicPartition(topic, sum(key) % PARTITIONS)

    async def flush(self) -> None:
        await self.producer.flush()


class _App:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = _TransportProducer(producer)


class _Tables:
    """Two tables in memory whose changelog records go to the stream's source partition."""

    def __init__(self, states_topic: str, last_events_topic: str) -> None:
        self.topics = states_topic, last_events_topic
        self.values: dict[str, tuple[bytes, bytes | None]] = {}

    def previous(self, stream):
        return self.values.get(stream)

    def write(self, stream, state, last_event, partition):
        self.values[stream] = (state, last_event)
        return [(partition, Outgoing(topic, stream.encode(), value))
                for topic, value in zip(self.topics, (state, last_event)) if value is not None]

    def restore(self, stream, previous):
        if previous is None:
            self.values.pop(stream, None)
        else:
            self.values[stream] = previous


class _Offsets:
    async def commit_folded(self, tps):
        pass


def _records() -> list[SourceRecord]:
    """Two days of every stream; the streams spread over both partitions, several on each."""
    records = []
    for day in ("2025-01-06", "2025-01-07"):
        for stream in STREAMS:
            value = json.dumps({"stream": stream, "date": day,
                                "slots": {"07:30": {"result": "Win", "peak": 12.0}}}).encode()
            partition = sum(stream.encode()) % PARTITIONS
            records.append(SourceRecord("events", partition, len(records), stream.encode(), value))
    return records


async def _commit_and_list_ends(bootstrap: str, alone: bool) -> tuple[dict[int, int], dict[int, int], dict]:
    """Commit one batch; per partition of the states changelog: records sent, listed end; the tables."""
    name = uuid.uuid4().hex[:8]
    states_topic, last_events_topic = f"states-{name}", f"last-events-{name}"
    await create_topics(bootstrap, {states_topic: PARTITIONS, last_events_topic: PARTITIONS,
                                    f"decisions-{name}": PARTITIONS, f"dead-{name}": PARTITIONS},
                        compacted=[states_topic, last_events_topic])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        tables = _Tables(states_topic, last_events_topic)
        live = LiveStates(CONFIG, read_table=lambda stream: None)
        processor = EventProcessor(CONFIG, live.get, live.last_event)
        commit = BatchCommit(FaustProducerPort(_App(producer)), tables, _Offsets(), live,
                             decisions_topic=f"decisions-{name}", dead_letters_topic=f"dead-{name}",
                             encode_dead_letter=lambda letter: letter.reason.encode(),
                             last_changelog_record_alone=alone)
        outcome = processor.process(_records())
        assert sorted(outcome.states) == sorted(STREAMS) and not outcome.dead_letters
        await commit.commit(outcome, {"events:0", "events:1"})
    finally:
        await producer.stop()
    sent = {p: sum(1 for s in STREAMS if sum(s.encode()) % PARTITIONS == p) for p in range(PARTITIONS)}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(states_topic, p) for p in range(PARTITIONS)]
        listed = {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()
    return sent, listed, tables.values


async def test_the_listed_end_of_every_changelog_partition_counts_all_its_records(kafka_bootstrap):
    sent, listed, tables = await _commit_and_list_ends(kafka_bootstrap, alone=True)
    assert all(count >= 3 for count in sent.values())  # several records per partition: a real test
    assert listed == sent
    assert sorted(tables) == sorted(STREAMS)


async def test_without_it_this_broker_lists_a_short_end(kafka_bootstrap):
    sent, listed, _ = await _commit_and_list_ends(kafka_bootstrap, alone=False)
    # One batch of n records per partition: the broker lists "base offset + 1" = 1.
    assert listed == {p: 1 for p in sent}, (
        f"the broker now lists the true end ({listed} for {sent} records): "
        "SEQUENCER_CHANGELOG_SINGLE_RECORD_BATCHES may no longer be needed")
