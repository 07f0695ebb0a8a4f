"""Measure Faust agent shapes against a plain aiokafka consumer, on Tansu.

Run by hand (takes a few minutes on 2 cores)::

    python bench/bench_stream_shapes.py --events 120000
    python bench/bench_stream_shapes.py --events 120000 --shapes t5000,t5000-nodecision
    python bench/bench_stream_shapes.py --bootstrap host:9092   # an existing broker

What it does, in one process tree:

1. starts an `EmbeddedBroker` (unless ``--bootstrap``), creates a source topic
   (4 partitions, unique name per run) and produces ``--events`` synthetic day
   events (msgpack maps of ~300 bytes, 12 stream keys) with aiokafka;
2. baseline: a plain ``AIOKafkaConsumer`` reads and msgpack-decodes them all;
3. each Faust shape runs in its own child process (one worker, fresh app id,
   fresh group, own output topic): the agent takes a batch of events, decodes
   them, sends one decision record per event through the transport producer
   (``app.producer.send``), flushes it, then writes one table value per key
   (changelog on) with one of the batch's events made current;
4. after each shape it checks the at-least-once bookkeeping: every decision is
   on the output topic, and the group's committed offsets reached the end of
   the source topic.

Rates are events per second folded by the agent, from the first batch handed
over to the last batch done (the first batch's events are not counted), so
group join, table recovery and start-up are excluded; the baseline is timed
the same way from its first ``getmany`` batch.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import msgpack

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker  # noqa: E402
from sequencer.adapters.kafka.topics import create_topics  # noqa: E402

logger = logging.getLogger("bench_stream_shapes")

INSTRUMENTS = ("ES", "NQ", "YM", "CL", "GC", "NG")
SESSIONS = {
    "S1": ("07:30", "08:00", "09:00"),
    "S2": ("09:30", "10:00", "10:30", "11:00"),
}
RESULTS = ("Win", "Loss", "BE", "NoTrade", "TIME")


# --- shapes --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Shape:
    """One agent/app configuration to measure."""

    name: str
    take: int = 1000  # take_events batch size
    within: float = 1.0  # take_events timeout (s)
    max_poll_records: int | None = None  # broker_max_poll_records (Faust default None)
    stream_buffer_maxsize: int | None = None  # Faust default 4096
    stream_wait_empty: bool = True  # Faust default True
    quiet_logs: bool = False  # aiokafka/faust/mode loggers at WARNING
    decisions: bool = True  # one decision record per event
    restore_current_event: bool = True  # see _write_states()
    codec: str = "raw"  # "raw": decode in the agent; "msgpack": a Faust codec
    fast_drain: bool = False  # experimental: consumer without per-message wait_first
    quiet_monitor: bool = False  # Monitor sensor without per-event bookkeeping


_TUNED = dict(max_poll_records=5000, stream_buffer_maxsize=32768, stream_wait_empty=False,
              quiet_logs=True)

SHAPES: dict[str, Shape] = {
    s.name: s
    for s in (
        Shape("t1000-defaults", take=1000),
        Shape("t1000-quietlogs", take=1000, quiet_logs=True),
        Shape("t1000-maxpoll5000", take=1000, max_poll_records=5000),
        Shape("t1000-buffer32k", take=1000, stream_buffer_maxsize=32768),
        Shape("t1000-nowaitempty", take=1000, stream_wait_empty=False),
        Shape("t1000-tuned", take=1000, **_TUNED),
        Shape("t1000-tuned-codec", take=1000, codec="msgpack", **_TUNED),
        Shape("t5000-defaults", take=5000),
        Shape("t5000-tuned", take=5000, **_TUNED),
        Shape("t10000-tuned", take=10000, **_TUNED),
        Shape("t20000-tuned", take=20000, **_TUNED),
        Shape("t1000-fastdrain", take=1000, fast_drain=True),
        Shape("t5000-fastdrain", take=5000, fast_drain=True),
        Shape("t5000-fastdrain-quietlogs", take=5000, fast_drain=True, quiet_logs=True),
        Shape("t5000-tuned-fastdrain", take=5000, fast_drain=True, **_TUNED),
        Shape("t5000-fastdrain-quietmon", take=5000, fast_drain=True, quiet_monitor=True),
        Shape("t5000-fastdrain-buffer32k", take=5000, fast_drain=True,
              stream_buffer_maxsize=32768),
        Shape("t5000-fastdrain-maxpoll5000", take=5000, fast_drain=True, max_poll_records=5000),
        Shape("t5000-fastdrain-nowaitempty", take=5000, fast_drain=True,
              stream_wait_empty=False),
        Shape("t1000-tuned-fastdrain", take=1000, fast_drain=True, **_TUNED),
        Shape("t20000-tuned-fastdrain", take=20000, fast_drain=True, **_TUNED),
        Shape("t5000-tuned-fastdrain-quietmon", take=5000, fast_drain=True, quiet_monitor=True,
              **_TUNED),
        Shape("t5000-tuned-fastdrain-nodecision", take=5000, fast_drain=True, decisions=False,
              **_TUNED),
        Shape("t5000-fastdrain-quietmon-quietlogs", take=5000, fast_drain=True,
              quiet_monitor=True, quiet_logs=True),
        # Reference only (no decision records, so not the semantics):
        Shape("t5000-nodecision", take=5000, decisions=False),
        Shape("t5000-fastdrain-nodecision", take=5000, fast_drain=True, decisions=False),
        # The current-event trap. With full batches take_events' background
        # task is parked on "buffer consumed" and nothing goes wrong; with
        # batches cut by the `within` timeout (the live regime: few events)
        # it reads the stream's current event after the agent changed it.
        Shape("t1000-w5ms", take=1000, within=0.005),
        Shape("t1000-w5ms-norestore", take=1000, within=0.005, restore_current_event=False),
    )
}
DEFAULT_SHAPES = (
    "t1000-defaults,t1000-quietlogs,t1000-maxpoll5000,t1000-buffer32k,t1000-nowaitempty,"
    "t1000-tuned,t1000-tuned-codec,t5000-defaults,t20000-tuned,"
    "t5000-fastdrain,t5000-tuned-fastdrain,t5000-fastdrain-quietmon-quietlogs,"
    "t5000-nodecision,t5000-fastdrain-nodecision,t1000-w5ms,t1000-w5ms-norestore"
)


# --- synthetic events ------------------------------------------------------------


def stream_names() -> list[str]:
    return [f"{i}{s[-1]}" for s in SESSIONS for i in INSTRUMENTS]  # 12 streams


def make_event(rng: random.Random, stream: str, day: date) -> dict[str, Any]:
    session = f"S{stream[-1]}"
    slots = {}
    for slot in SESSIONS[session]:
        slots[slot] = {
            "result": rng.choice(RESULTS),
            "peak": round(rng.uniform(0, 60), 2),
            "target": 10,
            "direction": rng.choice(("Long", "Short")),
            "range": round(rng.uniform(0, 30), 2),
            "profit": round(rng.uniform(-20, 20), 2),
        }
    return {
        "stream": stream,
        "instrument": stream[:-1],
        "session": session,
        "date": day.isoformat(),
        "slots": slots,
    }


async def produce_events(bootstrap: str, topic: str, count: int) -> tuple[float, int]:
    """Produce *count* events round-robin over the streams; returns (seconds, avg bytes)."""
    from aiokafka import AIOKafkaProducer

    rng = random.Random(42)
    streams = stream_names()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024, acks=1
    )
    await producer.start()
    total_bytes = 0
    start = time.perf_counter()
    try:
        day0 = date(2000, 1, 3)
        for i in range(count):
            stream = streams[i % len(streams)]
            day = day0 + timedelta(days=i // len(streams))
            value = msgpack.packb(make_event(rng, stream, day))
            total_bytes += len(value)
            await producer.send(topic, value, key=stream.encode())
        await producer.flush()
    finally:
        await producer.stop()
    return time.perf_counter() - start, total_bytes // max(count, 1)


async def read_all(bootstrap: str, topic: str, idle_ms: int = 1500) -> list[Any]:
    """Every record of *topic*, read from the start until it stays quiet *idle_ms*."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=idle_ms)
            if not batch:
                return records
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str,
                            partitions: list[int]) -> dict[int, int]:
    """Committed offsets of *group* on *topic* (OffsetFetch for named partitions).

    Not ``AIOKafkaAdminClient.list_consumer_group_offsets``: its request for
    all partitions makes Tansu close the connection.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        out = {}
        for p in partitions:
            committed = await consumer.committed(TopicPartition(topic, p))
            out[p] = -1 if committed is None else committed
        return out
    finally:
        await consumer.stop()


# --- baseline ----------------------------------------------------------------------


async def baseline_per_record(bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    """Plain aiokafka consumer iterated one record at a time (``async for``)."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen = 0
    t_first = 0.0
    unpackb = msgpack.unpackb
    try:
        async for record in consumer:
            unpackb(record.value)
            seen += 1
            if seen == 1:
                t_first = time.perf_counter()
            if seen >= count:
                break
        t_last = time.perf_counter()
    finally:
        await consumer.stop()
    return {"shape": "baseline-aiokafka-per-record", "events": seen,
            "rate": (seen - 1) / (t_last - t_first)}


async def baseline(bootstrap: str, topic: str, count: int) -> dict[str, Any]:
    """Plain aiokafka consumer, default fetch settings, msgpack decode per record."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen = 0
    first_batch = 0
    t_first = t_last = 0.0
    ends: dict[int, int] = {}  # partition -> last offset + 1 (the true end)
    t_start = time.perf_counter()
    unpackb = msgpack.unpackb
    try:
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000)
            n = 0
            for records in batch.values():
                for record in records:
                    unpackb(record.value)
                n += len(records)
                if records:
                    ends[records[-1].partition] = records[-1].offset + 1
            if n and not seen:
                t_first = time.perf_counter()
                first_batch = n
            seen += n
        t_last = time.perf_counter()
    finally:
        await consumer.stop()
    if seen > first_batch:
        rate = (seen - first_batch) / (t_last - t_first)
    else:  # everything came in one batch (tiny --events): time it from the start
        rate = seen / (t_last - t_start)
    return {"shape": "baseline-aiokafka", "events": seen, "rate": rate, "ends": ends}


# --- the Faust app (child process) ------------------------------------------------------


def _register_msgpack_codec() -> None:
    from faust.serializers import codecs

    class MsgpackCodec(codecs.Codec):
        def _dumps(self, obj: Any) -> bytes:
            return msgpack.packb(obj)

        def _loads(self, s: bytes) -> Any:
            return msgpack.unpackb(s)

    with contextlib.suppress(Exception):
        codecs.register("msgpack", MsgpackCodec())


def create_app(
    shape: Shape,
    *,
    app_id: str,
    bootstrap: str,
    source: str,
    output: str,
    partitions: int,
    expected: int,
    datadir: Path,
    on_done: Any,
) -> Any:
    """Build the Faust app for *shape*. No module-level app, no side effects at import."""
    import faust

    settings: dict[str, Any] = dict(
        broker=f"kafka://{bootstrap}",
        store="memory://",
        datadir=str(datadir),
        web_enabled=False,  # no HTTP server (port 6066 clashes between runs)
        topic_partitions=partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        # Short group timeouts: Faust joins a group on Tansu quickly only with these.
        broker_session_timeout=6.0,
        broker_rebalance_timeout=6.0,
        broker_heartbeat_interval=1.0,
        stream_recovery_delay=0.0,
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
    )
    if shape.max_poll_records is not None:
        settings["broker_max_poll_records"] = shape.max_poll_records
    if shape.stream_buffer_maxsize is not None:
        settings["stream_buffer_maxsize"] = shape.stream_buffer_maxsize
    if not shape.stream_wait_empty:
        settings["stream_wait_empty"] = False
    if shape.quiet_monitor:
        settings["monitor"] = quiet_monitor()
    app = faust.App(app_id, **settings)

    if shape.codec == "msgpack":
        _register_msgpack_codec()
        source_topic = app.topic(source, key_type=bytes, key_serializer="raw",
                                 value_serializer="msgpack")
    else:
        source_topic = app.topic(source, key_type=bytes, value_type=bytes,
                                 key_serializer="raw", value_serializer="raw")
    # Keys and values are bytes (msgpack values), raw on the changelog too
    # (key_serializer/value_serializer are app settings).
    states = app.Table("state", default=None, partitions=partitions,
                       key_type=bytes, value_type=bytes)

    decode = (lambda v: v) if shape.codec == "msgpack" else msgpack.unpackb
    packb = msgpack.packb

    progress = {"last": 0.0, "done": 0, "unique": 0, "t_first": 0.0, "reported": False}

    @app.timer(interval=1.0)
    async def watchdog() -> None:
        # A shape that loses events never reaches `expected`: report the stall.
        if progress["t_first"] and not progress["reported"] \
                and time.perf_counter() - progress["last"] > 10.0:
            progress["reported"] = True
            await on_done(app, {"shape": shape.name, "events": progress["done"],
                                "unique_events": progress["unique"], "rate": 0.0,
                                "stalled": True})

    @app.agent(source_topic)
    async def fold(stream: Any) -> None:
        if shape.quiet_logs:
            # aiokafka's producer logs every send at DEBUG; with a permissive
            # level each one builds a LogRecord.
            for name in ("aiokafka", "faust", "mode"):
                logging.getLogger(name).setLevel(logging.WARNING)
        producer = app.producer
        done = 0
        first_batch = 0
        t_first = 0.0
        busy = 0.0
        batches = 0
        seen: set[tuple[int, int]] = set()  # (partition, offset): each event once?
        async for events in stream.take_events(shape.take, shape.within):
            t0 = time.perf_counter()
            if not t_first:
                t_first = t0
                first_batch = len(events)
            last_by_key: dict[bytes, Any] = {}
            fold_by_key: dict[bytes, dict] = {}
            for event in events:
                msg = event.message
                seen.add((msg.partition, msg.offset))
                day = decode(event.value)
                key = msg.key
                acc = fold_by_key.get(key)
                if acc is None:
                    prev = states.get(key)
                    acc = msgpack.unpackb(prev) if prev else {"n": 0, "last": None}
                    fold_by_key[key] = acc
                acc["n"] += 1
                acc["last"] = day["date"]
                acc["src"] = f"{msg.topic}:{msg.partition}:{msg.offset + 1}"
                last_by_key[key] = event
                if shape.decisions:
                    decision = packb({"stream": day["stream"], "date": day["date"],
                                      "slot": "07:30", "target": 10.0, "seq": acc["n"]})
                    # Same partition as the source: deterministic, whatever
                    # the client's key hashing.
                    await producer.send(output, key, decision, msg.partition, None, None)
            if shape.decisions:
                # Decisions are on the broker before the state that says
                # "applied" is written (at-least-once ordering).
                await producer.flush()
            _write_states(stream, states, fold_by_key, last_by_key,
                          restore=shape.restore_current_event, packb=packb)
            done += len(events)
            batches += 1
            busy += time.perf_counter() - t0
            progress.update(last=time.perf_counter(), done=done, unique=len(seen),
                            t_first=t_first)
            if (len(seen) >= expected or done >= 2 * expected) and not progress["reported"]:
                progress["reported"] = True
                t_last = time.perf_counter()
                rate = (done - first_batch) / (t_last - t_first) if t_last > t_first else 0.0
                await on_done(app, {
                    "shape": shape.name, "events": done, "unique_events": len(seen),
                    "rate": rate,
                    "batches": batches, "busy_fraction": busy / max(t_last - t_first, 1e-9),
                })

    return app


def _write_states(stream: Any, table: Any, values: dict, events: dict, *, restore: bool,
                  packb: Any) -> None:
    """One table write per key, each with that key's last event made current.

    The table sends the changelog record to the partition of the *current
    event*; inside take_events there is none in the agent's task, so make one
    current (``_set_current_event``, private API). It also sets the stream's
    ``current_event`` attribute, which take_events' background task reads to
    decide which event to ack: put back what was there, or the next batch
    acks an old event twice and never acks the new one (commits stall).
    No await between set and restore, so nothing else runs in between.
    """
    saved = stream.current_event
    try:
        for key, value in values.items():
            stream._set_current_event(events[key])
            table[key] = packb(value)
    finally:
        if restore:
            stream._set_current_event(saved)


def quiet_monitor() -> Any:
    """A faust Monitor whose per-message/per-event/per-send hooks do nothing.

    Loses the stock Monitor's counters and latency deques (web stats), keeps
    the rebalance/commit/assignment hooks.
    """
    from faust.sensors import Monitor

    class QuietMonitor(Monitor):  # type: ignore[misc, valid-type]
        def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
            pass

        def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
            return None

        def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                                state: Any = None) -> None:
            pass

        def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
            pass

        def on_send_initiated(self, producer: Any, topic: str, message: Any,
                              keysize: int, valsize: int) -> Any:
            return None

        def on_send_completed(self, producer: Any, state: Any, metadata: Any) -> None:
            pass

        def on_table_get(self, table: Any, key: Any) -> None:
            pass

        def on_table_set(self, table: Any, key: Any, value: Any) -> None:
            pass

    return QuietMonitor()


def run_child(args: argparse.Namespace) -> None:
    import faust

    shape = SHAPES[args.child]
    result_path = Path(args.result)
    datadir = Path(tempfile.mkdtemp(prefix="bench-faust-"))

    async def on_done(app: Any, result: dict) -> None:
        await app.producer.flush()
        await app.consumer.commit()  # don't wait for the commit interval
        result_path.write_text(json.dumps(result))
        os.kill(os.getpid(), signal.SIGTERM)  # the worker stops cleanly on it

    app = create_app(
        shape, app_id=args.app_id, bootstrap=args.bootstrap, source=args.source,
        output=args.output, partitions=args.partitions, expected=args.events,
        datadir=datadir, on_done=on_done,
    )
    worker = faust.Worker(app, loglevel="warning", quiet=True, redirect_stdouts=False)
    if shape.fast_drain:
        # After the Worker set the app's loop, before the consumer exists.
        from sequencer.adapters.faust.private_api import fast_drain_consumer_class

        app.transport.Consumer = fast_drain_consumer_class()
    profile = os.environ.get("BENCH_PROFILE")  # path: write a cProfile of the child
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
        try:
            worker.execute_from_commandline()
        except SystemExit:
            pass
        finally:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{shape.name}")
        return
    worker.execute_from_commandline()


# --- orchestration ----------------------------------------------------------------------


def run_shape(shape: str, bootstrap: str, source: str, events: int, partitions: int,
              run_id: str, workdir: Path, timeout: float,
              source_end: dict[int, int]) -> dict[str, Any]:
    app_id = f"bench-{run_id}-{shape}"
    output = f"bench-{run_id}-{shape}-decisions"
    asyncio.run(create_topics(bootstrap, {output: partitions}))
    result_path = workdir / f"{shape}.json"
    log_path = workdir / f"{shape}.log"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", shape,
           "--bootstrap", bootstrap, "--source", source, "--output", output,
           "--app-id", app_id, "--events", str(events), "--partitions", str(partitions),
           "--result", str(result_path)]
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - started
    if not result_path.exists():
        tail = log_path.read_text(errors="replace")[-3000:]
        return {"shape": shape, "error": f"no result (exit {proc.returncode}); log tail:\n{tail}"}
    result = json.loads(result_path.read_text())
    result["wall_s"] = wall
    # Tansu's ListOffsets (end_offsets) answers "base offset of the last batch
    # + 1", too low for multi-record batches: count by reading instead.
    records = asyncio.run(read_all(bootstrap, output))
    result["decisions"] = len(records)
    result["unique_decisions"] = len({(r.key, msgpack.unpackb(r.value)["date"]) for r in records})
    committed = asyncio.run(committed_offsets(bootstrap, app_id, source, list(source_end)))
    result["committed_to_end"] = all(committed.get(p, -1) >= off for p, off in source_end.items())
    result["committed"] = committed
    return result


def _summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The upper-median run of a shape by rate (of 2 runs: the faster), all rates attached."""
    ok = [r for r in runs if "error" not in r and not r.get("stalled")]
    if not ok:
        return runs[-1]
    ok.sort(key=lambda r: r["rate"])
    median = dict(ok[len(ok) // 2])
    median["rates"] = [round(r["rate"]) for r in runs if "rate" in r]
    if len(ok) < len(runs):
        median["failed_runs"] = len(runs) - len(ok)
    return median


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--bootstrap", help="use this broker instead of an embedded Tansu")
    parser.add_argument("--shapes", default=DEFAULT_SHAPES,
                        help=f"comma list from: {', '.join(SHAPES)}")
    parser.add_argument("--timeout", type=float, default=300.0, help="per shape, seconds")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every shape this many times (interleaved); report the "
                             "upper median (of 2: the faster)")
    parser.add_argument("--json", type=Path, help="also write results here")
    # child-process arguments
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--app-id", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        run_child(args)
        return 0

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown:
        parser.error(f"unknown shapes {unknown}")
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{run_id}-"))
    broker: EmbeddedBroker | None = None
    # SIGTERM (e.g. `timeout`) would skip the finally below and atexit hooks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.bootstrap:
        bootstrap = args.bootstrap
    else:
        broker = EmbeddedBroker(log_path=workdir / "tansu.log").start()
        bootstrap = broker.bootstrap
    try:
        source = f"bench-{run_id}-days"
        asyncio.run(create_topics(bootstrap, {source: args.partitions}))
        secs, avg = asyncio.run(produce_events(bootstrap, source, args.events))
        logger.info("produced %d events (avg %d bytes) in %.1fs", args.events, avg, secs)
        runs: dict[str, list[dict[str, Any]]] = {}
        for rep in range(args.repeat):
            for res in (asyncio.run(baseline(bootstrap, source, args.events)),
                        asyncio.run(baseline_per_record(bootstrap, source, args.events))):
                runs.setdefault(res["shape"], []).append(res)
                logger.info("%s: %.0f events/s", res["shape"], res["rate"])
            ends = runs["baseline-aiokafka"][0]["ends"]
            for shape in shapes:
                res = run_shape(shape, bootstrap, source, args.events, args.partitions,
                                f"{run_id}r{rep}", workdir, args.timeout, ends)
                runs.setdefault(shape, []).append(res)
                logger.info("%s: %s", shape, {k: v for k, v in res.items() if k != "committed"})
        results = [_summarise(v) for v in runs.values()]
    finally:
        if broker is not None:
            broker.stop()

    base = max(results[0]["rate"], 1e-9)
    print(f"\nmachine: {os.cpu_count()} cpus, Python {platform.python_version()}; "
          f"events={args.events}, avg value {avg} B, partitions={args.partitions}")
    print(f"{'shape':34} {'events/s':>9} {'ratio':>6} {'unique':>7} {'decisions':>9} "
          f"{'commit@end':>10}  runs")
    for r in results:
        if "error" in r:
            print(f"{r['shape']:34} ERROR {r['error']}")
            continue
        if r.get("stalled"):
            print(f"{r['shape']:34} STALLED: {r['unique_events']} of {args.events} distinct "
                  f"events reached the agent ({r['events']} with repeats)")
            continue
        print(f"{r['shape']:34} {r['rate']:9.0f} {r['rate'] / base:6.2f} "
              f"{r.get('unique_events', r['events'])!s:>7} "
              f"{r.get('unique_decisions', '-')!s:>9} {str(r.get('committed_to_end', '-')):>10}"
              f"  {r.get('rates', '')}")
    if args.json:
        args.json.write_text(json.dumps({"events": args.events, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
