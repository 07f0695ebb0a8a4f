"""The agent's stream hand-off alone: Faust's stream against the worker's `QuickStream`, in one process.

    python bench/bench_stream_handoff.py [--records 30000] [--repeat 7]

What the worker's main thread does for every record of the events topic between
the consumer's drain and the batch, without a broker: the conductor's handler
for the partition (Faust's Cython ``ConductorHandler``: flow control, the
producer buffer's check, the channel's decode into a Faust event, the channel's
queue), the agent's stream iterating it (Faust's ``Stream``, or the worker's
``private_api.quick_stream_class()``), `take_bursts` taking batches of 5,000
and the worker's `record_of` per event. The records go in as the fast drain
hands them over (100 in a row, then a turn of the loop). Four set-ups: Faust's
stream with its ``cython_optimizations`` off (the worker before) and on (its
opt-in Cython fast path, tried and left off: docs/benchmarks.md), and the quick
stream with the setting off (the worker now) and on (it only touches the
conductor then: one channel, no difference expected); on uvloop's event loop, with the worker's
producer buffer check and its collector settings (``freeze_long_lived_objects``),
as the worker runs (``--asyncio-loop``: asyncio's own loop, whose turn costs more).

Microseconds of this process's CPU time per record (``time.process_time``),
best of ``--repeat`` passes, the set-ups alternated pass by pass so load on the
shared machine hits them alike. Every pass checks that all records came out,
in order.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import faust  # noqa: E402
from faust.transport._cython.conductor import ConductorHandler  # noqa: E402
from faust.types import TP, Message  # noqa: E402

from sequencer.adapters.faust.per_record import EventBytesSchema, QuietMonitor  # noqa: E402
from sequencer.adapters.faust.private_api import install_fast_drain, quick_stream_class  # noqa: E402
from sequencer.adapters.faust.record_intake import MOST_WAITING, record_of  # noqa: E402
from sequencer.adapters.faust.take_bursts import take_bursts  # noqa: E402
from sequencer.adapters.faust.worker import freeze_long_lived_objects  # noqa: E402

TOPIC = "handoff-events"
BATCH = 5000
IN_A_ROW = 100  # the fast drain's records between two turns of the loop


async def one_pass(stream_class: type, cython_optimizations: bool, records: int, name: str) -> float:
    app = faust.App(name, broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False,
                    monitor=QuietMonitor(), cython_optimizations=cython_optimizations,
                    stream_buffer_maxsize=MOST_WAITING,
                    stream_wait_empty=False)
    install_fast_drain(app)  # the worker's producer buffer check (and consumer, not started here)
    app.conf.Stream = stream_class
    app.flow_control.resume()
    topic = app.topic(TOPIC, schema=EventBytesSchema(), acks=False)
    channel = topic.__aiter__()
    stream = app.stream(channel)
    tp = TP(TOPIC, 0)
    handler = ConductorHandler(app.topics, tp, {channel})
    messages = [Message(TOPIC, 0, offset, 1.5, 0, [], b"ES1", b"x" * 200, None, tp=tp, generation_id=0)
                for offset in range(records)]
    out: list = []

    async def drain() -> None:
        for start in range(0, records, IN_A_ROW):
            for message in messages[start:start + IN_A_ROW]:
                await handler(message)
            await asyncio.sleep(0)

    async def take() -> None:
        async for events in take_bursts(stream, BATCH, 0.05, acks=False):
            out.extend(record_of(event.message) for event in events)
            if len(out) >= records:
                return

    await stream.maybe_start()
    freeze_long_lived_objects()  # the worker's collector settings
    started = time.process_time()
    await asyncio.gather(drain(), take())
    spent = time.process_time() - started
    await stream.stop()
    assert [r.offset for r in out] == list(range(records)), "records lost or out of order"
    return 1e6 * spent / records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--asyncio-loop", action="store_true", help="asyncio's event loop, not uvloop's")
    args = parser.parse_args()
    if not args.asyncio_loop:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"faust-streaming {faust.__version__}, {'asyncio' if args.asyncio_loop else 'uvloop'}'s loop; load {os.getloadavg()[0]:.1f}; {args.records:,} records a pass")
    systems = {"Faust's Stream, cython_optimizations off": (faust.Stream, False),
               "Faust's Stream, cython_optimizations on": (faust.Stream, True),
               "QuickStream (the worker's), cython_optimizations off": (quick_stream_class(), False),
               "QuickStream, cython_optimizations on": (quick_stream_class(), True)}
    best = {name: float("inf") for name in systems}
    names = list(systems)
    for number in range(args.repeat):
        for name in names[number % len(names):] + names[:number % len(names)]:
            stream_class, optimized = systems[name]
            spent = asyncio.run(one_pass(stream_class, optimized, args.records, f"handoff-{number}-{len(name)}"))
            best[name] = min(best[name], spent)
    base = best[names[0]]
    for name, spent in best.items():
        print(f"{name}: {spent:.2f} us CPU a record (best of {args.repeat}), {spent / base:.2f}x the first")
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
