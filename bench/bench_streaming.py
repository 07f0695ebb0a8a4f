"""Streaming figures (issue 3), ratios against baselines measured in the same run.

    python bench/bench_streaming.py [--days 10000] [--worker-only]

On one embedded broker (Tansu), with 120,000 synthetic day events (12 streams):
1. plain aiokafka publish of all events (the streamer's publisher);
2. plain aiokafka consumers reading the same topic, msgpack decode only: the
   textbook ``async for message in consumer`` (the shape of the issue's
   reference figure, about 44,000/s) and ``getmany`` in chunks of 5,000 (the
   fastest a Python consumer gets here);
3. the sequencer worker (a real ``sequencer worker`` process) from its first
   commit to all events consumed: the end-to-end rate (decode, validate, fold,
   decisions published, states in the changelog table);
4. ``sequencer run --embedded`` over the same file, whole command, against
   plain publish + consume with a broker start (1 + 2 + broker start).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


async def plain_consume_per_message(bootstrap: str, topic: str, expected: int) -> float:
    """The textbook aiokafka consumer: ``async for message in consumer``."""
    import msgpack
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        async for message in consumer:
            msgpack.unpackb(message.value)
            seen += 1
            if seen >= expected:
                break
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def plain_consume(bootstrap: str, topic: str, expected: int) -> float:
    """The fastest plain aiokafka consumer: ``getmany`` in chunks of 5,000."""
    import msgpack
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False, max_poll_records=5000)
    await consumer.start()
    try:
        seen = 0
        started = time.perf_counter()
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                for record in records:
                    msgpack.unpackb(record.value)
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def publish(bootstrap: str, topic: str, events) -> tuple[float, dict[int, int]]:
    from streamer.publisher import EventPublisher

    started = time.perf_counter()
    async with EventPublisher(bootstrap, topic) as publisher:
        await publisher.publish_events(events)
    return time.perf_counter() - started, dict(publisher.end_offsets)


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    from sequencer.adapters.kafka.lag import committed_offsets

    try:
        return await committed_offsets(bootstrap, group, topic)
    except Exception:  # noqa: BLE001 - the group does not exist yet
        return {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--worker-only", action="store_true",
                        help="stop after the worker's rate (no `run --embedded`): for A/B runs of two trees")
    args = parser.parse_args()

    from synthetic import write_synthetic

    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker, free_port
    from sequencer.adapters.kafka.topics import create_topics
    from sequencer.domain import SequencerConfig
    from sequencer.adapters.files.sources import read_day_events

    work = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    csv_path = work / "synthetic.csv"
    write_synthetic(csv_path, args.days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
    events = read_day_events([csv_path], SequencerConfig()).events
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{len(events)} day events")

    broker_started = time.perf_counter()
    with EmbeddedBroker() as broker:
        broker_start_s = time.perf_counter() - broker_started
        bootstrap = broker.bootstrap
        topics = {"bench.day-events": 4, "bench.decisions": 4, "bench.dead-letters": 4}
        asyncio.run(create_topics(bootstrap, topics))
        publish_s, ends = asyncio.run(publish(bootstrap, "bench.day-events", events))
        consume_s = asyncio.run(plain_consume(bootstrap, "bench.day-events", len(events)))
        plain_rate = len(events) / consume_s
        per_message_s = asyncio.run(plain_consume_per_message(bootstrap, "bench.day-events", len(events)))
        per_message_rate = len(events) / per_message_s
        print(f"broker start {broker_start_s:.2f}s; plain publish {publish_s:.2f}s "
              f"({len(events) / publish_s:,.0f}/s); plain consume, getmany {consume_s:.2f}s ({plain_rate:,.0f}/s), "
              f"async for {per_message_s:.2f}s ({per_message_rate:,.0f}/s)")

        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, SEQUENCER_TOPIC_EVENTS="bench.day-events",
                   SEQUENCER_TOPIC_DECISIONS="bench.decisions", SEQUENCER_TOPIC_DEAD_LETTERS="bench.dead-letters",
                   SEQUENCER_CONFIG_NAME="bench")
        log = (work / "worker.log").open("w")
        worker = subprocess.Popen([sys.executable, "-m", "sequencer.cli.main", "worker", "--state-dir",
                                   str(work / "state"), "--web-port", str(free_port())],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            first_at = first_done = None
            total = sum(ends.values())
            while True:
                done = sum(min(v, ends.get(p, 0)) for p, v in asyncio.run(
                    committed(bootstrap, "sequencer-bench", "bench.day-events")).items())
                now = time.perf_counter()
                if done and first_at is None:
                    first_at, first_done = now, done
                if done >= total:
                    break
                if worker.poll() is not None:
                    raise SystemExit(f"worker exited; see {work / 'worker.log'}")
                time.sleep(0.2)
            worker_rate = (total - first_done) / (now - first_at) if now > first_at else float("nan")
        finally:
            worker.terminate()
            worker.wait(60)
    print(f"sequencer worker end to end: {worker_rate:,.0f} events/s = "
          f"{worker_rate / per_message_rate:.1%} of the plain `async for` consumer, "
          f"{worker_rate / plain_rate:.1%} of the plain getmany consumer (target >= 40%)")
    if args.worker_only:
        return

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sequencer.cli.main", "run", "--embedded", str(csv_path),
                    "--out", str(work / "run"), "--state-dir", str(work / "run-state"), "--fresh"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    run_s = time.perf_counter() - started
    plain_s = broker_start_s + publish_s + consume_s
    print(f"sequencer run --embedded: {run_s:.1f}s vs plain publish + consume with broker start "
          f"{plain_s:.1f}s = {run_s / plain_s:.1f}x (target <= 3x)")


if __name__ == "__main__":
    main()
