"""Batches folded one ahead of their commits (`sequencer.app.batch_pipeline`): the
next batch is folded while the one before it is on its way to the broker, and
nothing a user relies on changes: commits in batch order, each committing only
the offsets its own batch covers, and a failed commit voiding what was folded
on top of it."""

from __future__ import annotations

import asyncio
import json

from sequencer.app.batch_commit import BatchCommit, RetryDelay, Step
from sequencer.app.batch_pipeline import BatchPipeline
from sequencer.app.codecs import decode_payload
from sequencer.adapters.faust.live_state import LiveStates
from sequencer.app.processor import EventProcessor
from sequencer.app.records import SourceRecord
from sequencer.domain import SequencerConfig, state_from_dict
from tests.unit.test_batch_commit import FakeOffsets, FakeProducer, FakeTable

CONFIG = SequencerConfig()


class GatedProducer(FakeProducer):
    """A producer whose flushes wait until the test opens the gate; it keeps the order
    of what happened (sends by topic and partition, flushes)."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(fail_on)
        self.gate = asyncio.Event()
        self.gate.set()
        self.log: list[str] = []

    async def send_batch(self, topic, partition, records):
        self.log.append(f"send {topic} " + ",".join(decode_payload(r.value).get("date", "?")
                                                   if topic == "decisions" else r.key.decode() for r in records))
        return await super().send_batch(topic, partition, records)

    async def flush(self) -> None:
        self.log.append("flush waits")
        await self.gate.wait()
        self.log.append("flush done")
        await super().flush()


class Intake:
    """The input offsets as the pipeline sees them: records pass as they are, the
    offsets taken so far are remembered, a rewind is kept."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}
        self.rewound: list[list[SourceRecord]] = []

    async def without_holes(self, records):
        for record in records:
            self.next[record.partition_key] = max(self.next.get(record.partition_key, 0), record.offset + 1)
        return records

    def folded_up_to(self, tps):
        return {tp: self.next[tp] for tp in tps if tp in self.next}

    async def rewind(self, records):
        self.rewound.append(list(records))
        for record in records:
            self.next[record.partition_key] = min(self.next[record.partition_key], record.offset)


def _event(stream: str, date: str) -> bytes:
    return json.dumps({"stream": stream, "date": date,
                       "slots": {"07:30": {"result": "Win", "peak": 12.0}}}).encode()


def batch(first_offset: int, dates: list[str], streams=("ES1", "NQ1")) -> list[SourceRecord]:
    pairs = [(date, stream) for date in dates for stream in streams]
    return [SourceRecord("events", 0, first_offset + i, stream.encode(), _event(stream, date))
            for i, (date, stream) in enumerate(pairs)]


def _setup(producer: FakeProducer, retry: RetryDelay | None = None):
    table, offsets, intake = FakeTable(), FakeOffsets(), Intake()
    live = LiveStates(CONFIG, read_table=lambda stream: table.states.get(stream))
    processor = EventProcessor(CONFIG, live.get, live.last_event)
    commit = BatchCommit(producer, table, offsets, live, decisions_topic="decisions",
                         dead_letters_topic="dead-letters", encode_dead_letter=lambda d: d.reason.encode())
    landed, failed = [], []
    pipeline = BatchPipeline(processor, commit, intake, retry=retry or RetryDelay(first_s=0.05, most_s=0.05),
                             on_landed=lambda folded, result: landed.append(len(folded.records)),
                             on_failed=lambda failure, delay: failed.append(failure.step))
    return pipeline, table, offsets, intake, landed, failed


def _table_state(table: FakeTable, stream: str):
    return state_from_dict(json.loads(table.states[stream]), CONFIG)


async def test_the_next_batch_is_folded_on_the_one_in_flight_and_committed_after_it():
    producer = GatedProducer()
    pipeline, table, offsets, _, landed, _ = _setup(producer)
    producer.gate.clear()  # the first batch's decisions are not acknowledged yet

    await asyncio.wait_for(pipeline.submit(batch(0, ["2025-01-06"])), 1.0)  # returns with its commit out
    assert producer.log[-1] == "flush waits"
    assert all(line.startswith("send decisions 2025-01-06") for line in producer.log[:-1])
    assert not pipeline.idle and offsets.commits == []

    second = asyncio.ensure_future(pipeline.submit(batch(2, ["2025-01-07"])))
    await asyncio.sleep(0.01)
    # Folded already (on the first batch's states), but nothing of it is sent before
    # the first batch is on the broker.
    assert not second.done()
    assert not [line for line in producer.log if "2025-01-07" in line]

    producer.gate.set()
    await asyncio.wait_for(second, 1.0)
    await asyncio.wait_for(pipeline.drain(), 1.0)
    assert pipeline.idle

    sends = [line for line in producer.log if line.startswith("send decisions")]
    first_flushed = producer.log.index("flush done")
    assert all(producer.log.index(line) > first_flushed for line in sends if "2025-01-07" in line)
    # The second batch continued from the first: two days applied, not one twice.
    es1 = _table_state(table, "ES1")
    assert (es1.last_processed_date, es1.events_applied) == ("2025-01-07", 2)
    # Each commit committed what its own batch covers, in batch order.
    assert offsets.commits == [{"events:0": 2}, {"events:0": 4}]
    assert landed == [2, 2]


async def test_a_failed_commit_voids_the_batch_folded_on_it_and_asks_for_both_again():
    producer = GatedProducer(fail_on="flush:2")  # the first batch's changelog flush fails
    pipeline, table, offsets, intake, landed, failed = _setup(producer)
    producer.gate.clear()
    first, second = batch(0, ["2025-01-06"]), batch(2, ["2025-01-07"])
    await pipeline.submit(first)
    waiting = asyncio.ensure_future(pipeline.submit(second))
    await asyncio.sleep(0.01)
    assert pipeline.processor.counters.applied == 4  # both folded

    producer.gate.set()
    await asyncio.wait_for(waiting, 1.0)
    await asyncio.wait_for(pipeline.drain(), 1.0)

    assert failed == [Step.FLUSH_STATES] and landed == []
    assert pipeline.failed is not None and pipeline.failed.step is Step.FLUSH_STATES
    assert intake.rewound == [first + second]  # one rewind, from the first batch's first record
    assert offsets.commits == [] and table.states == {}
    assert not [line for line in producer.log if "2025-01-07" in line]  # the voided batch sent nothing
    counters = pipeline.processor.counters
    assert (counters.records, counters.applied) == (0, 0)  # as before the failed batch

    # Asked for again, both land once.
    await pipeline.submit(first + second)
    await asyncio.wait_for(pipeline.drain(), 1.0)
    assert landed == [4] and pipeline.failed is None
    assert (pipeline.processor.counters.records, pipeline.processor.counters.applied) == (4, 4)
    assert _table_state(table, "NQ1").events_applied == 2
    assert offsets.commits == [{"events:0": 4}]


async def test_a_failed_commit_asks_for_its_records_again_without_waiting_for_another_batch():
    # The last batch of a burst: nothing comes after it to notice the failure.
    producer = FakeProducer(fail_on="ack")
    pipeline, _, offsets, intake, _, failed = _setup(producer)
    records = batch(0, ["2025-01-06"])
    await pipeline.submit(records)
    await asyncio.wait_for(pipeline.drain(), 1.0)
    assert failed == [Step.FLUSH_OUTPUTS] and intake.rewound == [records] and offsets.commits == []


async def test_after_a_failure_the_next_commit_waits_for_the_pause():
    producer = FakeProducer(fail_on="ack")
    pipeline, _, offsets, _, landed, _ = _setup(producer, RetryDelay(first_s=0.3, most_s=0.3))
    records = batch(0, ["2025-01-06"])
    await pipeline.submit(records)
    await pipeline.drain()
    producer.fail_on = None
    loop = asyncio.get_running_loop()
    started = loop.time()
    await pipeline.submit(records)  # folded at once, committed after the pause
    assert landed == []
    await pipeline.drain()
    assert landed == [2] and loop.time() - started >= 0.25
    assert offsets.commits == [{"events:0": 2}]


async def test_records_that_are_all_skipped_start_no_commit():
    producer = FakeProducer()
    pipeline, _, offsets, intake, landed, _ = _setup(producer)
    intake.without_holes = _nothing_kept
    await pipeline.submit(batch(0, ["2025-01-06"]))
    assert pipeline.idle and landed == [] and offsets.commits == [] and producer.flushes == 0


async def _nothing_kept(records):
    return []


async def test_the_batch_ahead_sees_the_offsets_and_last_events_of_the_one_in_flight():
    producer = GatedProducer()
    pipeline, _, _, _, _, _ = _setup(producer)
    producer.gate.clear()
    first = batch(0, ["2025-01-06"], streams=("ES1",))
    await pipeline.submit(first)
    changed = SourceRecord("events", 0, 1, b"ES1", json.dumps(
        {"stream": "ES1", "date": "2025-01-06", "slots": {"07:30": {"result": "Loss", "peak": 3.0}}}).encode())
    ahead = asyncio.ensure_future(pipeline.submit([first[0], changed]))  # a redelivery, then a changed day
    await asyncio.sleep(0.01)
    counters = pipeline.processor.counters
    assert (counters.redelivered, counters.applied, counters.dead_letters) == (1, 1, 1)
    assert "duplicate" in next(iter(counters.dead_letter_reasons))
    producer.gate.set()
    await asyncio.wait_for(ahead, 1.0)
    await pipeline.drain()


def test_a_record_whose_decoding_fails_unforeseen_is_a_dead_letter_and_the_batch_goes_on(monkeypatch, caplog):
    """An exception the validation did not foresee costs its record (dead-lettered with its
    type, logged with the traceback), never the batch."""
    processor = EventProcessor(CONFIG, lambda stream: None)
    decode = processor._decoder.decode

    def failing_on_nq1(data, latest_date=None):
        if b"NQ1" in data:
            raise ZeroDivisionError("not foreseen")
        return decode(data, latest_date)

    monkeypatch.setattr(processor._decoder, "decode", failing_on_nq1)
    outcome = processor.process(batch(0, ["2025-01-02", "2025-01-03"]))
    assert [d.stream for d in outcome.decisions] == ["ES1", "ES1"]
    assert [(letter.record.offset, letter.reason) for letter in outcome.dead_letters] == [
        (1, "unexpected error decoding the event: ZeroDivisionError"),
        (3, "unexpected error decoding the event: ZeroDivisionError")]
    assert "unexpected error decoding" in caplog.text and "ZeroDivisionError" in caplog.text
