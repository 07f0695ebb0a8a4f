"""A fuzz run through a live worker: random and adversarial records, each valid or
invalid *by construction*, so the check does not ask the code under test.

Valid records are day events of 12 streams, each stream's dates strictly
increasing: every one must become a decision. Every other record breaks SPEC 3
in a way chosen when it is made (bytes msgpack never starts with, nesting,
sizes, names, future dates, huge numbers, wrong types, a key that is not the
stream, ...): every one must become a dead letter. Used by
``tests/integration/test_fuzz_worker.py`` (a few thousand records) and
``bench/fuzz_worker.py`` (100,000).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

from sequencer.adapters.kafka.decision_log import read_decisions

from tests.support.recovery_helpers import Setup
from tests.support.kafka_io import read_topic_values

STREAMS = ("ES1", "ES2", "NQ1", "NQ2", "YM1", "YM2", "CL1", "CL2", "GC1", "GC2", "NG1", "NG2")
SLOTS = {"S1": ("07:30", "08:00", "09:00"), "S2": ("09:30", "10:00", "10:30", "11:00")}
RESULTS = ("Win", "Loss", "BE", "NoTrade", "TIME", "win", "BREAK_EVEN", "no trade")
FIRST_DAY = dt.date(2001, 1, 1)
#: One record this large (over the broker's usual 1 MB) per this many records.
HUGE_EVERY = 25_000


@dataclass(frozen=True, slots=True)
class FuzzRecord:
    key: bytes | None
    value: bytes | None
    family: str                 # "valid" or the way the record is broken
    stream: str | None = None   # of a valid record
    date: str | None = None


def _session(stream: str) -> str:
    return "S" + stream[-1]


def _event(rng: random.Random, stream: str, date: str) -> dict:
    slots = {}
    for slot in SLOTS[_session(stream)]:
        if rng.random() < 0.85:
            outcome = {"result": rng.choice(RESULTS)}
            if rng.random() < 0.9:
                outcome["peak"] = round(rng.uniform(0, 80), 2)
            if rng.random() < 0.5:
                outcome["direction"] = rng.choice(("Long", "Short"))
            if rng.random() < 0.3:
                outcome["profit"] = round(rng.uniform(-50, 50), 2)
            slots[slot] = outcome
    return {"stream": stream, "instrument": stream[:-1], "session": _session(stream), "date": date, "slots": slots}


def _encode(rng: random.Random, doc: dict) -> bytes:
    if rng.random() < 0.3:
        return json.dumps(doc).encode()
    return msgpack.packb(doc, use_bin_type=True)


def _weird_value(rng: random.Random):
    """A msgpack value that is not a string: every type the format has, non-string map keys."""
    return rng.choice([
        lambda: rng.randrange(-(2**63), 2**64), lambda: rng.random() * 10 ** rng.randrange(300), lambda: None,
        lambda: True, lambda: rng.randbytes(rng.randrange(40)), lambda: [1, "ES1", [None]],
        lambda: {1: "ES1", b"k": None, None: 2.5, False: []},
        lambda: msgpack.Timestamp(rng.randrange(2**32), 0), lambda: msgpack.ExtType(rng.randrange(128), b"x"),
    ])()


def _broken(rng: random.Random, family: str, max_event_bytes: int) -> tuple[bytes | None, bytes | None]:
    stream = rng.choice(STREAMS)
    date = (FIRST_DAY + dt.timedelta(days=rng.randrange(9000))).isoformat()
    doc = _event(rng, stream, date)
    key = stream.encode()
    slot = SLOTS[_session(stream)][0]
    if family == "bytes msgpack never starts with":
        return key, b"\xc1" + rng.randbytes(rng.randrange(300))
    if family == "JSON nested too deep":
        depth = rng.choice((17, 100, 1000, 5000, (max_event_bytes - 100) // 2))
        return key, (b'{"stream":"%s","date":"%s","slots":{"%s":' % (stream.encode(), date.encode(), slot.encode())
                     + b"[" * depth + b"]" * depth + b"}}")
    if family == "msgpack nested as the stream":
        depth = rng.choice((2, 50, 1000, 1025, 20_000))
        return key, b"\x81\xa6stream" + b"\x91" * depth + b"\x90"
    if family == "over the size limit":
        return key, msgpack.packb({**doc, "padding": "x" * (max_event_bytes + rng.randrange(1, 5000))})
    if family == "over a megabyte":
        return key, msgpack.packb({**doc, "padding": "x" * 1_200_000})
    if family == "stream name not matching as a whole":
        bad = rng.choice((stream + "\n", stream + "\r\n", stream + " ", "../" + stream, stream + "é",
                          stream + "\x00", "", "x" * 40))
        return bad.encode(), msgpack.packb({**doc, "stream": bad, "instrument": stream[:-1]})
    if family == "date in the future":
        future = (dt.date(2205, 1, 9) + dt.timedelta(days=rng.randrange(3000))).isoformat()
        return key, _encode(rng, {**doc, "date": future})
    if family == "number too large or not finite":
        if rng.random() < 0.5:
            digits = rng.choice((14, 20, 400, 4000))
            return key, (b'{"stream":"%s","date":"%s","slots":{"%s":{"result":"Win","peak":%s}}}'
                         % (stream.encode(), date.encode(), slot.encode(), b"9" * digits))
        peak = rng.choice((1e13, 1e300, float("inf"), float("nan"), -1.0, 2**63 - 1, 10**15))
        return key, msgpack.packb({**doc, "slots": {slot: {"result": "Win", "peak": peak}}})
    if family == "stream not a string":
        return key, msgpack.packb({**doc, "stream": _weird_value(rng)}, use_bin_type=True)
    if family == "not a map":
        return key, msgpack.packb(rng.choice((_weird_value(rng), [doc], "ES1", 7)), use_bin_type=True)
    if family == "bad direction":
        if rng.random() < 0.5:
            return key, (b'{"stream":"%s","date":"%s","slots":{"%s":{"result":"Win","direction":"\\ud800"}}}'
                         % (stream.encode(), date.encode(), slot.encode()))
        return key, msgpack.packb({**doc, "slots": {slot: {"result": "Win", "direction": "L" * 5000}}})
    if family == "unknown slot, result or instrument":
        choice = rng.randrange(3)
        if choice == 0:
            return key, msgpack.packb({**doc, "slots": {"12:00": {"result": "Win"}}})
        if choice == 1:
            return key, msgpack.packb({**doc, "slots": {slot: {"result": "Maybe" * rng.randrange(1, 3000)}}})
        return b"ZZ1", msgpack.packb({**doc, "stream": "ZZ1", "instrument": "ZZ"})
    if family == "key is not the stream":
        other = rng.choice([s for s in STREAMS if s != stream]).encode()
        return rng.choice((other, b"k" * 3000, rng.randbytes(8))), _encode(rng, doc)
    if family == "empty or no value":
        return key, rng.choice((b"", None))
    if family == "malformed JSON":
        return key, b"{" + rng.randbytes(rng.randrange(200)).replace(b"}", b"")
    raise ValueError(family)


BROKEN_FAMILIES = (
    "bytes msgpack never starts with", "JSON nested too deep", "msgpack nested as the stream",
    "over the size limit", "stream name not matching as a whole", "date in the future",
    "number too large or not finite", "stream not a string", "not a map", "bad direction",
    "unknown slot, result or instrument", "key is not the stream", "empty or no value", "malformed JSON",
)


def fuzz_records(count: int, seed: int, *, max_event_bytes: int = 65536, valid_share: float = 0.3) -> list[FuzzRecord]:
    """``count`` records, deterministic for ``seed``; one over a megabyte per ``HUGE_EVERY`` (at least one)."""
    rng = random.Random(seed)
    next_day = {stream: 0 for stream in STREAMS}
    records = []
    huge_at = {rng.randrange(count) for _ in range(max(1, count // HUGE_EVERY))}
    for index in range(count):
        if index in huge_at:
            key, value = _broken(rng, "over a megabyte", max_event_bytes)
            records.append(FuzzRecord(key, value, "over a megabyte"))
        elif rng.random() < valid_share:
            stream = rng.choice(STREAMS)
            date = (FIRST_DAY + dt.timedelta(days=next_day[stream])).isoformat()
            next_day[stream] += rng.choice((1, 1, 1, 3))
            records.append(FuzzRecord(stream.encode(), _encode(rng, _event(rng, stream, date)), "valid", stream, date))
        else:
            family = rng.choice(BROKEN_FAMILIES)
            key, value = _broken(rng, family, max_event_bytes)
            records.append(FuzzRecord(key, value, family))
    return records


@dataclass
class FuzzReport:
    records: int
    seconds: float
    worker_alive: bool
    tracebacks: int
    decisions: int
    dead_letters: int
    problems: list[str] = field(default_factory=list)
    families: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.problems


async def _produce(bootstrap: str, topic: str, records: list[FuzzRecord]) -> dict[tuple[int, int], FuzzRecord]:
    """Send all records (one producer, in order per partition); (partition, offset) -> record."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_request_size=8 * 1024 * 1024, max_batch_size=1024 * 1024)
    await producer.start()
    where: dict[tuple[int, int], FuzzRecord] = {}
    try:
        pending = []
        for record in records:
            pending.append((record, await producer.send(topic, value=record.value, key=record.key)))
            if len(pending) >= 2000:
                await _collect(pending, where)
        await _collect(pending, where)
    finally:
        await producer.stop()
    return where


async def _collect(pending: list, where: dict) -> None:
    for record, future in pending:
        meta = await future
        where[(meta.partition, meta.offset)] = record
    pending.clear()


def run_fuzz(setup: Setup, records: list[FuzzRecord], log_path: Path, timeout_s: float = 600) -> FuzzReport:
    """Start a worker, send ``records``, wait until it has consumed them all, then check every record's fate."""
    worker = setup.start_worker(log_path)
    started = time.monotonic()
    try:
        where = asyncio.run(_produce(setup.bootstrap, setup.topic_events, records))
        ends: dict[int, int] = {}
        for partition, offset in where:
            ends[partition] = max(ends.get(partition, 0), offset + 1)
        setup.wait_consumed(ends, worker, timeout_s=timeout_s)
        seconds = time.monotonic() - started
        alive = worker.alive()
    finally:
        worker.stop()
    log = log_path.read_text(errors="replace")
    letters = [msgpack.unpackb(v, raw=False) for v in read_topic_values(setup.bootstrap, setup.topic_dead_letters)]
    decisions = asyncio.run(read_decisions(setup.bootstrap, setup.topic_decisions))
    report = FuzzReport(len(records), seconds, alive, log.count("Traceback"), len(decisions), len(letters),
                        families=Counter(r.family for r in records))
    if not alive:
        report.problems.append("the worker died")
    if report.tracebacks:
        report.problems.append(f"{report.tracebacks} tracebacks in the worker log {log_path}")
    lettered = Counter((d["source_partition"], d["source_offset"]) for d in letters)
    broken = {pos for pos, r in where.items() if r.family != "valid"}
    if set(lettered) != broken or any(n > 1 for n in lettered.values()):
        missing = sorted(broken - set(lettered))[:5]
        extra = sorted(set(lettered) - broken)[:5]
        twice = [pos for pos, n in lettered.items() if n > 1][:5]
        report.problems.append(f"dead letters: {len(broken - set(lettered))} broken records without one "
                               f"(e.g. {[(p, where[p].family) for p in missing]}), {len(set(lettered) - broken)} "
                               f"valid ones with one (e.g. {extra}), {len(twice)} twice")
    unexpected = [d["reason"] for d in letters if "unexpected error" in d["reason"]]
    if unexpected:
        report.problems.append(f"{len(unexpected)} dead letters from unforeseen errors, e.g. {unexpected[0]}")
    too_big = [d for d in letters if len(d["value"] or b"") > 16 * 1024]
    if too_big:
        report.problems.append(f"{len(too_big)} dead letters carry more than 16 KiB of the original value")
    expected = Counter((r.stream, r.date) for r in records if r.family == "valid")
    got = Counter((d.stream, d.date) for d in decisions)
    if set(got) != set(expected):
        report.problems.append(f"decisions: {len(set(expected) - set(got))} valid days without one, "
                               f"{len(set(got) - set(expected))} decisions for no valid day")
    return report
