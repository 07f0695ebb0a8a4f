"""The events topic's records straight from the consumer's drain to the worker's batches
(`sequencer.adapters.faust.record_intake`): batches go as `take_bursts` hands them over
(a settled burst at once, a steady flow up to ``within``, never over ``max_``), every
record once and in order, the drain held back when the intake is full, and a
revocation dropping what waits. The worker over the real drain and the embedded
broker is tests/integration/test_streaming.py and the system tests."""

from __future__ import annotations

import asyncio
import time
from typing import NamedTuple

from sequencer.adapters.faust.record_intake import RecordIntake, record_of
from sequencer.app.records import SourceRecord


class Message(NamedTuple):
    """The fields of a Faust message the intake reads."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None


def message(offset: int, partition: int = 0) -> Message:
    return Message("events", partition, offset, b"ES1", b"v%d" % offset, 1_700_000_000.25)


def test_a_record_keeps_the_message_s_fields_and_its_timestamp_in_milliseconds():
    assert record_of(message(7, partition=2)) == SourceRecord("events", 2, 7, b"ES1", b"v7", 1_700_000_000_250)
    assert record_of(message(7)._replace(timestamp=None)).timestamp_ms is None


async def test_a_burst_goes_when_it_settles_not_at_the_end_of_within():
    intake = RecordIntake()
    for offset in range(200):
        intake.put(message(offset))
    started = time.monotonic()
    batch = await asyncio.wait_for(intake.take(1000, within=2.0, settle=0.02), 1.0)
    assert [r.offset for r in batch] == list(range(200)) and time.monotonic() - started < 0.5
    assert len(intake) == 0


async def test_a_steady_flow_grows_its_batch_until_within_and_nothing_is_lost():
    intake = RecordIntake()

    async def flow():
        for offset in range(60):
            intake.put(message(offset))
            await asyncio.sleep(0.01)  # under the settle of 50 ms

    feeding = asyncio.ensure_future(flow())
    batches = []
    while sum(len(b) for b in batches) < 60:
        batches.append(await asyncio.wait_for(intake.take(10_000, within=0.3, settle=0.05), 2.0))
    await feeding
    assert [r.offset for b in batches for r in b] == list(range(60))
    assert max(len(b) for b in batches) >= 15  # held until within, not one batch per record


async def test_a_batch_never_holds_more_than_max_and_keeps_the_order():
    intake = RecordIntake()
    for offset in range(50):
        intake.put(message(offset))
    batches = [await intake.take(7, within=5.0, settle=1.0) for _ in range(8)]
    assert [len(b) for b in batches] == [7] * 7 + [1]
    assert [r.offset for b in batches for r in b] == list(range(50))


async def test_a_full_intake_holds_the_drain_back_until_a_batch_is_taken():
    intake = RecordIntake(most=5)
    assert all(intake.put(message(offset)) for offset in range(4))
    assert intake.put(message(4)) is False  # the fifth fills it: the drain waits for room
    waiting = asyncio.ensure_future(intake.room())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert len(await intake.take(3, within=0.1, settle=0.01)) == 3
    await asyncio.wait_for(waiting, 0.1)


async def test_a_revocation_drops_what_waits_and_a_taker_waits_for_new_records():
    intake = RecordIntake(most=3)
    for offset in range(3):
        intake.put(message(offset))
    assert intake.clear() == 3 and len(intake) == 0 and intake.cleared == 3
    await asyncio.wait_for(intake.room(), 0.1)  # room again for the drain
    taking = asyncio.ensure_future(intake.take(10, within=0.1, settle=0.01))
    await asyncio.sleep(0.02)
    assert not taking.done()
    intake.put(message(9, partition=1))
    assert [(r.partition, r.offset) for r in await asyncio.wait_for(taking, 1.0)] == [(1, 9)]


async def test_records_cleared_while_a_batch_settles_are_not_handed_over():
    intake = RecordIntake()
    intake.put(message(0))
    taking = asyncio.ensure_future(intake.take(10, within=1.0, settle=0.05))
    await asyncio.sleep(0.01)
    intake.clear()  # revoked while the batch was settling
    await asyncio.sleep(0.1)
    assert not taking.done()  # no empty batch
    intake.put(message(5))
    assert [r.offset for r in await asyncio.wait_for(taking, 1.0)] == [5]
