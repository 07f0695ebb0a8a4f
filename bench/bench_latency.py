"""Decision latency figures (issue 15), on the embedded broker with a real worker.

    python bench/bench_latency.py [--live-days 30] [--burst-streams 1000]

1. Live: ``streamer feed`` of 200 streams with ``--day-every 1`` (one trading
   day of the 200 streams every second: 200 events/s) for ``--live-days``
   days. Target: p99 under 100 ms. Each second's 200 events come at once.
1b. Live, evenly spread: ``streamer publish --rate 200`` of as many further
   days (one event every 5 ms), the other reading of "200 events/s".
2. Burst: one trading day of ``--burst-streams`` streams fed at once.
   Target: every decision within 1 s.

Latency is measured independently of the worker's own histogram: every day
event's record timestamp (the streamer's create time) against the timestamp
of its decision record on the decisions topic (the worker's producer sets it
when the decision is handed over), matched by (stream, date). The worker's
``GET /lag`` p50/p99 (record time to decision acknowledged) are printed beside.

The streams: 50 instruments (AA, AB, ...) x 20 sessions of three slots,
declared in a config file given to the worker and the streamer.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from synthetic import trading_days  # noqa: E402 - after the path above

SLOTS = ("07:30", "08:00", "09:00")
HEADER = ["Date", "Time", "Session", "Stream", "Instrument", "Target", "Peak",
          "Direction", "Result", "Range", "Profit"]


def instruments(count: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [a + b for a in letters for b in letters][:count]


def write_config(path: Path, n_instruments: int, n_sessions: int) -> None:
    path.write_text(json.dumps({
        "instruments": {name: {"base": 10, "increment": 5, "tick": 0.25} for name in instruments(n_instruments)},
        "sessions": {f"S{i}": list(SLOTS) for i in range(1, n_sessions + 1)},
    }))


def stream_names(count: int, n_sessions: int) -> list[tuple[str, str, str]]:
    """(stream, instrument, session) for ``count`` streams."""
    out = []
    for instrument in instruments(math.ceil(count / n_sessions)):
        for session in range(1, n_sessions + 1):
            out.append((f"{instrument}{session}", instrument, f"S{session}"))
    return out[:count]


def write_days(path: Path, streams: list[tuple[str, str, str]], days: list[dt.date], seed: int) -> None:
    rnd = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for day in days:
            for stream, instrument, session in streams:
                for slot in SLOTS:
                    writer.writerow([day.isoformat(), slot, session, stream, instrument, 10,
                                     round(rnd.uniform(0, 60) * 4) / 4, "Long",
                                     rnd.choice(("Win", "Loss", "BE")), 5.0, 10.0])


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, {}
    except OSError:
        return 0, {}


def record_times(bootstrap: str, topic: str, decode) -> dict[tuple[str, str], float]:
    """(stream, date) -> record timestamp in seconds, for every record of ``topic``."""
    from sequencer.adapters.kafka.log_reader import read_topic

    found: dict[tuple[str, str], float] = {}

    def take(records: list) -> None:
        for record in records:
            key = decode(record.value)
            if key is not None:
                found.setdefault(key, record.timestamp / 1000)

    asyncio.run(read_topic(bootstrap, topic, take))
    return found


def decision_key(value: bytes):
    from sequencer.app.codecs import decode_decision

    decision = decode_decision(value)
    return decision.stream, decision.date


def quantiles(values: list[float]) -> str:
    from sequencer.app.latency import quantile

    return (f"p50 {quantile(values, 0.5) * 1000:.0f} ms, p99 {quantile(values, 0.99) * 1000:.0f} ms, "
            f"max {max(values) * 1000:.0f} ms over {len(values)} decisions")


def wait_decisions(bootstrap: str, topic: str, wanted: set, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        decided = record_times(bootstrap, topic, decision_key)
        if wanted <= set(decided):
            return decided
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(wanted & set(decided))} of {len(wanted)} decisions after {timeout:.0f} s")
        time.sleep(1.0)


def feed(csv_path: Path, config: Path, env: dict, day_every: float) -> None:
    subprocess.run([sys.executable, "-m", "streamer.cli", "feed", str(csv_path), "--day-every", str(day_every),
                    "--config", str(config)], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)


def publish_at_rate(csv_path: Path, config: Path, env: dict, rate: float) -> None:
    subprocess.run([sys.executable, "-m", "streamer.cli", "publish", str(csv_path), "--rate", str(rate),
                    "--config", str(config)], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--live-days", type=int, default=30)
    parser.add_argument("--live-streams", type=int, default=200)
    parser.add_argument("--burst-streams", type=int, default=1000)
    args = parser.parse_args()

    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker, free_port
    from sequencer.app.lag_report import stream_and_date
    from sequencer.adapters.kafka.topics import create_topics

    sessions = 20
    work = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    config = work / "streams.json"
    write_config(config, math.ceil(max(args.burst_streams, args.live_streams) / sessions), sessions)
    both_live = trading_days(2 * args.live_days, dt.date(2024, 1, 1))
    live_days, spread_days = both_live[:args.live_days], both_live[args.live_days:]
    burst_day = trading_days(1, both_live[-1] + dt.timedelta(days=1))
    live_csv, spread_csv, burst_csv = work / "live.csv", work / "spread.csv", work / "burst.csv"
    write_days(live_csv, stream_names(args.live_streams, sessions), live_days, seed=1)
    write_days(spread_csv, stream_names(args.live_streams, sessions), spread_days, seed=3)
    write_days(burst_csv, stream_names(args.burst_streams, sessions), burst_day, seed=2)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f} at start")

    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap
        topics = {"lat.day-events": 4, "lat.decisions": 4, "lat.dead-letters": 4}
        asyncio.run(create_topics(bootstrap, topics))
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, SEQUENCER_TOPIC_EVENTS="lat.day-events",
                   SEQUENCER_TOPIC_DECISIONS="lat.decisions", SEQUENCER_TOPIC_DEAD_LETTERS="lat.dead-letters",
                   SEQUENCER_CONFIG_NAME="latency")
        port = free_port()
        log = (work / "worker.log").open("w")
        worker = subprocess.Popen([sys.executable, "-m", "sequencer.cli.main", "worker", "--config", str(config),
                                   "--config-name", "latency", "--state-dir", str(work / "state"),
                                   "--web-port", str(port)],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while get(url + "/health/ready")[0] != 200:  # partitions assigned, tables recovered
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"worker not ready; see {work / 'worker.log'}")
                time.sleep(0.5)

            spans: dict[str, float] = {}

            def events_and_decisions(wanted: set) -> list[float]:
                published = record_times(bootstrap, "lat.day-events", stream_and_date)
                decided = wait_decisions(bootstrap, "lat.decisions", wanted)
                spans["published"] = max(published[k] for k in wanted) - min(published[k] for k in wanted)
                spans["decided"] = max(decided[k] for k in wanted) - min(published[k] for k in wanted)
                return [decided[k] - published[k] for k in wanted]

            started = time.perf_counter()
            feed(live_csv, config, env, 1.0)
            fed_s = time.perf_counter() - started
            live_keys = {(s, d.isoformat()) for s, _, _ in stream_names(args.live_streams, sessions) for d in live_days}
            live = events_and_decisions(live_keys)
            rate = len(live_keys) / fed_s
            worker_view = get(url + "/lag")[1].get("decision_latency") or {}
            print(f"live, streamer feed {args.live_streams} streams, a day every 1 s ({rate:.0f} events/s "
                  f"over {fed_s:.0f} s): {quantiles(live)}")
            print(f"  the worker's own view (record time to decision acknowledged): "
                  f"p50 {worker_view.get('p50', float('nan')) * 1000:.0f} ms, "
                  f"p99 {worker_view.get('p99', float('nan')) * 1000:.0f} ms")

            started = time.perf_counter()
            publish_at_rate(spread_csv, config, env, 200.0)
            fed_s = time.perf_counter() - started
            spread_keys = {(s, d.isoformat()) for s, _, _ in stream_names(args.live_streams, sessions)
                           for d in spread_days}
            spread = events_and_decisions(spread_keys)
            print(f"live, evenly spread, streamer publish --rate 200 of {args.live_streams} streams "
                  f"({len(spread_keys) / fed_s:.0f} events/s over {fed_s:.0f} s): {quantiles(spread)}")

            feed(burst_csv, config, env, 0.0)
            burst_keys = {(s, burst_day[0].isoformat()) for s, _, _ in stream_names(args.burst_streams, sessions)}
            burst = events_and_decisions(burst_keys)
            print(f"burst, one trading day of {args.burst_streams} streams at once: {quantiles(burst)} "
                  f"({sum(v <= 1.0 for v in burst)} of {len(burst)} within 1 s); the streamer took "
                  f"{spans['published'] * 1000:.0f} ms to publish the day, the last decision came "
                  f"{spans['decided'] * 1000:.0f} ms after the first event")
        finally:
            worker.terminate()
            worker.wait(60)
    print(f"load average {os.getloadavg()[0]:.1f} at the end; worker log {work / 'worker.log'}")


if __name__ == "__main__":
    main()
