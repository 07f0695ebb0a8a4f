"""The worker's per-record costs around the fold, each against what it replaced, in one process (issue 18).

    python bench/bench_faust_per_record.py [--records 20000] [--repeat 7]

Microseconds per record, best of ``--repeat`` passes, the pairs alternated
pass by pass so load on the shared machine hits both alike; CPU time of this
process (``time.process_time``):

1. the events topic's decode, Faust's raw-serializer schema against
   `per_record.EventBytesSchema` (the conductor's compiled decode function);
2. Faust's default ``Monitor`` against `per_record.QuietMonitor`, the four
   hooks the conductor and the stream call for every record;
3. a stream processor written as a plain function (tried) against a
   coroutine (what `take_bursts` keeps), both called as Faust's stream
   iterator calls processors (``await maybe_async(processor(value))``): a
   plain function's result goes through ``inspect.isawaitable``'s ABC check,
   a coroutine's is recognised at once;
4. a record type as a frozen slots dataclass against the NamedTuple that
   `SourceRecord` and `DayEvent` now are (same fields as `SourceRecord`).

Every pair is checked to give the same result before it is timed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faust  # noqa: E402
from faust.sensors.monitor import Monitor  # noqa: E402
from faust.types import TP, Message  # noqa: E402
from mode.utils.futures import maybe_async  # noqa: E402

from sequencer.adapters.faust.per_record import EventBytesSchema, QuietMonitor  # noqa: E402
from sequencer.app.records import SourceRecord  # noqa: E402


@dataclass(frozen=True, slots=True)
class FrozenRecord:
    """`SourceRecord` as it was: a frozen slots dataclass."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None


class Owner:
    pass


class FakeStream:
    task_owner = Owner()


def per_record(run, count: int) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    count = args.records
    app = faust.App("bench-per-record", broker="kafka://localhost:1")
    tp = TP("day-events", 0)
    value = b"\x85\xa6stream\xa3ES1" + b"x" * 200
    messages = [Message(tp.topic, tp.partition, i, 1.0, 0, [], b"ES1", value, None) for i in range(count)]
    loop = asyncio.new_event_loop()

    def decoder(schema: faust.Schema):
        decode = schema.compile(app)

        async def all_of_them() -> list:
            return [await decode(m, propagate=True) for m in messages]
        return lambda: loop.run_until_complete(all_of_them())

    raw = faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    ours, theirs = decoder(EventBytesSchema())(), decoder(raw)()
    assert [(e.key, e.value) for e in ours] == [(e.key, e.value) for e in theirs]

    def hooks(monitor: Monitor):
        stream = FakeStream()

        def run() -> None:
            for m in messages:
                monitor.on_message_in(tp, m.offset, m)
                state = monitor.on_stream_event_in(tp, m.offset, stream, None)
                monitor.on_stream_event_out(tp, m.offset, stream, None, state)
                monitor.on_message_out(tp, m.offset, m)
        return run

    buffer: list = []

    async def coroutine_processor(value: object) -> object:
        buffer.append(value)
        return value

    def plain_processor(value: object) -> object:
        buffer.append(value)
        return value

    def processing(processor):
        async def all_of_them() -> list:
            buffer.clear()
            return [await maybe_async(processor(m)) for m in messages]
        return lambda: loop.run_until_complete(all_of_them())

    assert processing(coroutine_processor)() == processing(plain_processor)()

    def building(record_type):
        return lambda: [record_type(m.topic, m.partition, m.offset, m.key, m.value, 1) for m in messages]

    assert [tuple(r.__getattribute__(f) for f in SourceRecord._fields) for r in building(FrozenRecord)()] \
        == [tuple(r) for r in building(SourceRecord)()]

    pairs = {
        "events topic decode": (decoder(raw), decoder(EventBytesSchema())),
        "Monitor, four hooks per record": (hooks(Monitor()), hooks(QuietMonitor())),
        "stream processor (plain vs coroutine)": (processing(plain_processor), processing(coroutine_processor)),
        "record type (SourceRecord)": (building(FrozenRecord), building(SourceRecord)),
    }
    best: dict[str, list[float]] = {name: [float("inf"), float("inf")] for name in pairs}
    for _ in range(args.repeat):
        for name, runs in pairs.items():
            for side, run in enumerate(runs):
                best[name][side] = min(best[name][side], per_record(run, count))
    load = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"faust-streaming {faust.__version__}; load average {load:.1f}; {count:,} records, best of {args.repeat}")
    print(f"{'per record, CPU':40s} {'before':>10s} {'now':>10s} {'saved':>10s}")
    for name, (before, now) in best.items():
        print(f"{name:40s} {before:8.2f} us {now:8.2f} us {before - now:8.2f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
