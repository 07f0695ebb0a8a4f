"""The batch commit's numbered steps with a fake producer, table and offsets: each
step is failed in turn, and nothing is committed or changed past it (as
quix-streams tests its checkpoint)."""

from __future__ import annotations

import asyncio
import json

import pytest

from sequencer.app.batch_commit import (
    BatchCommit,
    BatchCommitFailed,
    Outgoing,
    RetryDelay,
    Step,
)
from sequencer.app.codecs import decode_payload, encode_state
from sequencer.domain import SequencerConfig, initial_state, parse_day_event, state_from_dict
from sequencer.adapters.faust.live_state import LiveStates
from sequencer.app.processor import EventProcessor
from sequencer.app.records import SourceRecord

CONFIG = SequencerConfig()
PARTITIONS = 3


class Boom(RuntimeError):
    pass


class FakeProducer:
    """Keeps produce batches; ``fail_on`` names the call that raises ("send", "ack",
    or "flush:N" for the Nth flush)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.fail_on = fail_on
        self.queued: list[tuple[str, int, list[Outgoing]]] = []
        self.delivered: list[tuple[str, int, list[Outgoing]]] = []
        self.flushes = 0

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        return sum(key or b"") % PARTITIONS

    async def send_batch(self, topic, partition, records):
        if self.fail_on == "send":
            raise Boom("broker refused the batch")
        self.queued.append((topic, partition, list(records)))
        ack = asyncio.get_running_loop().create_future()
        if self.fail_on == "ack":
            ack.set_exception(Boom("MessageSizeTooLargeError"))
        else:
            ack.set_result(None)
        return [ack]

    async def flush(self) -> None:
        self.flushes += 1
        if self.fail_on == f"flush:{self.flushes}":
            raise Boom(f"flush {self.flushes} timed out")
        self.delivered.extend(self.queued)
        self.queued.clear()


class FakeTable:
    """Two tables in memory plus the changelog records sent; ``fail_after`` writes raise."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.states: dict[str, bytes] = {}
        self.last_events: dict[str, bytes] = {}
        self.changelog: list[tuple[str, int | None]] = []
        self.fail_after = fail_after

    def previous(self, stream):
        return self.states.get(stream), self.last_events.get(stream)

    def write(self, stream, state, last_event, partition):
        if self.fail_after is not None and len(self.changelog) >= self.fail_after:
            raise Boom("table write refused")
        self.states[stream] = state
        records = [(partition, Outgoing("states-changelog", stream.encode(), state))]
        if last_event is not None:
            self.last_events[stream] = last_event
            records.append((partition, Outgoing("last-events-changelog", stream.encode(), last_event)))
        self.changelog.append((stream, partition))
        return records

    def restore(self, stream, previous):
        for table, value in zip((self.states, self.last_events), previous):
            if value is None:
                table.pop(stream, None)
            else:
                table[stream] = value


class FakeOffsets:
    def __init__(self) -> None:
        self.commits: list[dict[str, int]] = []

    async def commit_folded(self, covered):
        self.commits.append(dict(covered))


#: What the batch of `_records` covers: the next offset of each partition.
COVERED = {"events:0": 11, "events:1": 4}


def _event(stream: str, date: str) -> bytes:
    return json.dumps({"stream": stream, "date": date,
                       "slots": {"07:30": {"result": "Win", "peak": 12.0}}}).encode()


def _records() -> list[SourceRecord]:
    values = [("ES1", "2025-01-06"), ("NQ1", "2025-01-06"), ("ES1", "2025-01-07"), ("YM1", "2025-01-06")]
    records = [SourceRecord("events", i % 2, i, stream.encode(), _event(stream, date))
               for i, (stream, date) in enumerate(values)]
    records.append(SourceRecord("events", 0, 10, b"ES1", b"\xc1 not an event"))  # a dead letter
    return records


def _setup(producer: FakeProducer, table: FakeTable):
    offsets = FakeOffsets()
    # NQ1 already has a state in the table: a failed commit must leave it as it is.
    es2 = initial_state("NQ1", CONFIG)
    table.states["NQ1"] = encode_state(es2)
    live = LiveStates(CONFIG, read_table=lambda stream: table.states.get(stream))
    processor = EventProcessor(CONFIG, live.get, live.last_event)
    commit = BatchCommit(producer, table, offsets, live, decisions_topic="decisions",
                         dead_letters_topic="dead-letters", encode_dead_letter=lambda d: d.reason.encode(),
                         clock=lambda: 1234.5)
    return commit, processor, live, offsets


FAILURES = [
    (Step.SEND, FakeProducer("send"), FakeTable()),
    (Step.FLUSH_OUTPUTS, FakeProducer("flush:1"), FakeTable()),
    (Step.FLUSH_OUTPUTS, FakeProducer("ack"), FakeTable()),
    (Step.WRITE_STATES, FakeProducer(), FakeTable(fail_after=0)),
    (Step.WRITE_STATES, FakeProducer(), FakeTable(fail_after=2)),
    (Step.FLUSH_STATES, FakeProducer("flush:2"), FakeTable()),
]


@pytest.mark.parametrize("step,producer,table", FAILURES,
                         ids=["send", "flush-outputs", "ack", "first-write", "third-write", "flush-states"])
async def test_a_failed_step_commits_nothing_and_changes_no_state(step, producer, table):
    commit, processor, live, offsets = _setup(producer, table)
    tables_before = (dict(table.states), dict(table.last_events))
    outcome = processor.process(_records())
    assert outcome.decisions and outcome.dead_letters  # the batch has both kinds of output

    with pytest.raises(BatchCommitFailed) as raised:
        await commit.commit(outcome, COVERED)

    assert raised.value.step is step
    assert f"step {int(step)}" in str(raised.value)
    assert offsets.commits == []
    assert (table.states, table.last_events) == tables_before
    # Only what was looked up before the fold is cached, as it was.
    assert {s: st.events_applied for s, st in live.cached().items()} == {"NQ1": 0}
    assert live.get("ES1") is None
    assert live.get("NQ1").events_applied == 0


async def test_a_failed_batch_folded_again_lands_once():
    producer, table = FakeProducer("flush:2"), FakeTable()
    commit, processor, live, offsets = _setup(producer, table)
    with pytest.raises(BatchCommitFailed):
        await commit.commit(processor.process(_records()), {"events:0": 11})
    producer.fail_on = None

    result = await commit.commit(processor.process(_records()), COVERED)

    assert offsets.commits == [COVERED]
    es1 = state_from_dict(json.loads(table.states["ES1"]), CONFIG)
    assert (es1.last_processed_date, es1.events_applied) == ("2025-01-07", 2)
    assert live.get("ES1") == es1
    assert result.decisions == 4 and result.dead_letters == 1 and result.sent_at == 1234.5


async def test_steps_run_in_order_and_sends_are_batched_per_partition():
    producer, table = FakeProducer(), FakeTable()
    commit, processor, live, offsets = _setup(producer, table)
    seen_at_send: list = []
    outcome = processor.process(_records())

    result = await commit.commit(outcome, COVERED,
                                 on_sent=lambda outcome, at: seen_at_send.append((at, dict(table.states))))

    # on_sent runs after the outputs are acknowledged and before any table write.
    assert seen_at_send == [(1234.5, {"NQ1": encode_state(initial_state("NQ1", CONFIG))})]
    decisions = [(p, [r.key for r in rs]) for t, p, rs in producer.delivered if t == "decisions"]
    # One produce batch per partition, each stream's decisions in their order.
    assert sorted(p for p, _ in decisions) == sorted({sum(k) % PARTITIONS for k in (b"ES1", b"NQ1", b"YM1")})
    for partition, keys in decisions:
        assert all(sum(k) % PARTITIONS == partition for k in keys)
    es1 = [decode_payload(r.value)["date"] for _, _, rs in producer.delivered for r in rs if r.key == b"ES1"
           and r.topic == "decisions"]
    assert es1 == ["2025-01-06", "2025-01-07"]
    # produce_batches counts the outputs' batches (decisions, dead letters), not the changelog's.
    assert result.produce_batches == len(producer.delivered) - len(_changelog_batches(producer))
    assert [r.topic for _, _, rs in producer.delivered for r in rs].count("dead-letters") == 1
    # Changelog records go to the partition of each stream's last record.
    assert dict(table.changelog) == {"ES1": 0, "NQ1": 1, "YM1": 1}
    assert offsets.commits == [COVERED]
    assert set(live.cached()) == {"ES1", "NQ1", "YM1"}


def _changelog_batches(producer: FakeProducer) -> list[tuple[str, int, list[bytes]]]:
    return [(t, p, [r.key for r in rs]) for t, p, rs in producer.delivered if t.endswith("-changelog")]


async def test_changelog_records_go_in_one_batch_per_partition_and_one_flush():
    producer, table = FakeProducer(), FakeTable()
    commit, processor, _, _ = _setup(producer, table)
    await commit.commit(processor.process(_records()), COVERED)
    # ES1 on partition 0; NQ1 and YM1 on partition 1 (the partition of their records).
    assert sorted(_changelog_batches(producer)) == [
        ("last-events-changelog", 0, [b"ES1"]), ("last-events-changelog", 1, [b"NQ1", b"YM1"]),
        ("states-changelog", 0, [b"ES1"]), ("states-changelog", 1, [b"NQ1", b"YM1"])]
    assert producer.flushes == 2  # outputs, changelog: no flush per record


async def test_last_changelog_record_of_each_partition_alone_when_asked():
    # Tansu reports a partition's end as the base offset of its last batch + 1:
    # the last batch of every changelog partition must hold one record.
    producer, table = FakeProducer(), FakeTable()
    commit, processor, _, _ = _setup(producer, table)
    commit.last_changelog_record_alone = True
    await commit.commit(processor.process(_records()), COVERED)
    batches = _changelog_batches(producer)
    last_batch = {}
    for topic, partition, keys in batches:
        last_batch[(topic, partition)] = keys
    assert last_batch == {("states-changelog", 0): [b"ES1"], ("states-changelog", 1): [b"YM1"],
                          ("last-events-changelog", 0): [b"ES1"], ("last-events-changelog", 1): [b"YM1"]}
    # Every record sent once, each partition's records in the order of the writes.
    for topic in ("states-changelog", "last-events-changelog"):
        assert [k for t, p, keys in batches if (t, p) == (topic, 1) for k in keys] == [b"NQ1", b"YM1"]
    assert sum(len(keys) for _, _, keys in batches) == 6
    assert producer.flushes == 2  # all queued at once: still one flush for the changelog


async def test_a_failed_changelog_batch_puts_the_written_ones_back():
    producer, table = FakeProducer(), FakeTable()
    commit, processor, live, offsets = _setup(producer, table)
    commit.last_changelog_record_alone = True
    sends = 0
    send_batch = producer.send_batch

    async def ack_fails_for_the_changelog_tail(topic, partition, records):
        nonlocal sends
        acks = await send_batch(topic, partition, records)
        sends += 1
        if topic.endswith("-changelog") and records[0].key == b"YM1":
            acks[0] = asyncio.get_running_loop().create_future()
            acks[0].set_exception(Boom("NotLeaderForPartitionError"))
        return acks

    producer.send_batch = ack_fails_for_the_changelog_tail
    before = (dict(table.states), dict(table.last_events))
    with pytest.raises(BatchCommitFailed) as raised:
        await commit.commit(processor.process(_records()), {"events:0": 11})
    assert raised.value.step is Step.FLUSH_STATES
    assert (table.states, table.last_events) == before and offsets.commits == []
    assert {s: st.events_applied for s, st in live.cached().items()} == {"NQ1": 0}


def test_retry_delay_doubles_up_to_its_cap_and_resets():
    delay = RetryDelay(first_s=0.5, most_s=3.0)
    assert [delay.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    delay.reset()
    assert delay.next() == 0.5


def test_the_records_in_this_file_are_valid_events():
    # An independent check of the fixture: the fold above folds real events.
    for record in _records()[:-1]:
        assert parse_day_event(decode_payload(record.value), CONFIG).stream == record.key.decode()


class CountingProducer(FakeProducer):
    """Counts the partitioner's calls by (topic, key)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: dict[tuple[str, bytes | None], int] = {}

    async def partition_for(self, topic, key):
        self.asked[topic, key] = self.asked.get((topic, key), 0) + 1
        return await super().partition_for(topic, key)


async def test_a_key_s_partition_is_asked_once_per_batch_and_every_record_lands_there():
    producer, table = CountingProducer(), FakeTable()
    commit, processor, live, offsets = _setup(producer, table)
    dates = [f"2025-02-{day:02d}" for day in range(3, 28) if day % 7 not in (1, 2)]
    records = [SourceRecord("events", 0, i, stream.encode(), _event(stream, date))
               for i, (date, stream) in enumerate((d, s) for d in dates for s in ("ES1", "NQ1", "YM1"))]
    records.append(SourceRecord("events", 0, len(records), None, b"\xc1 no key"))  # a dead letter without a key
    outcome = processor.process(records)
    assert len(outcome.decisions) == 3 * len(dates)

    await commit.commit(outcome, {"events:0": len(records)})

    decided = {key: n for (topic, key), n in producer.asked.items() if topic == "decisions"}
    assert decided == {b"ES1": 1, b"NQ1": 1, b"YM1": 1}
    assert producer.asked[("dead-letters", None)] == 1  # no key: asked for each such record
    # Every decision went to its key's partition (the fake partitioner: byte sum mod 3), in date order.
    for topic, partition, batch in producer.delivered:
        if topic == "decisions":
            assert all(sum(r.key) % PARTITIONS == partition for r in batch)
    for stream in ("ES1", "NQ1", "YM1"):
        sent = [decode_payload(r.value)["date"] for topic, _, batch in producer.delivered if topic == "decisions"
                for r in batch if r.key == stream.encode()]
        assert sent == dates


async def test_a_batch_in_flight_across_a_freeze_longer_than_the_session_writes_no_state():
    """A worker that wakes after the group may have given its partitions away writes
    nothing to the changelog (the new owner's newer states stay the last ones)."""
    from sequencer.app.membership_watch import MembershipWatch

    now = [100.0]
    watch = MembershipWatch(session_timeout_s=6.0, clock=lambda: now[0])
    watch.tick()  # the worker's loop runs
    producer, table = FakeProducer(), FakeTable()
    commit, processor, live, offsets = _setup(producer, table)
    commit.may_write = watch.doubt
    tables_before = (dict(table.states), dict(table.last_events))
    outcome = processor.process(_records())
    now[0] += 8.0  # frozen between the fold and the commit
    with pytest.raises(BatchCommitFailed) as raised:
        await commit.commit(outcome, COVERED)
    assert raised.value.step is Step.WRITE_STATES and "did not run for 8.0 s" in str(raised.value)
    assert table.changelog == [] and (table.states, table.last_events) == tables_before
    assert offsets.commits == []
    # Until an assignment says which partitions are ours, the next try is refused too ...
    now[0] += 1.0
    with pytest.raises(BatchCommitFailed):
        await commit.commit(processor.process(_records()), COVERED)
    watch.assigned()  # ... after it, the batch folded again lands
    await commit.commit(processor.process(_records()), COVERED)
    assert offsets.commits == [COVERED] and watch.silences == 1
