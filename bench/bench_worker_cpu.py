"""The worker's main thread on a backlog: CPU per event, and where the rest of the wall time went.

    python bench/bench_worker_cpu.py --tree /path/to/main-worktree --tree /path/to/branch-worktree \\
        [--tree /path/to/branch-worktree@SEQUENCER_FAST_DRAIN=false] [--rounds 3] [--days 10000]

Each ``--tree`` is a checkout with its own ``.venv`` (``pip install -e .``):
its own interpreter runs its own ``sequencer worker``, so two trees compare
without the editable install of one shadowing the other. ``@NAME=VALUE,...``
after a tree's path runs its worker with those environment variables too (the
same tree under two settings). Rounds alternate the
trees, starting with the r-th. Per run, bench_peers' set-up (fresh embedded
broker, 4 partitions, 120,000 synthetic day events published first); the
timed part is from the worker's first input-offset commit to the one that
covers every event (bench_peers' ``time_commits``), and over that part the
worker's main thread is read from ``/proc/PID/task/PID/schedstat``:

- ``run``: CPU time of the thread (what a per-event trim lowers);
- ``runqueue``: time it was ready but another process had the core (the load
  of the shared machine; it moves the rate, not the worker's work);
- ``idle``: the rest, the thread waiting on I/O with nothing to do.

The main thread's CPU per event stays readable while the machine is loaded,
where events/s does not. No correctness check here: bench_peers checks every
run's decisions and states.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_peers  # noqa: E402  (its topics, publisher and commit timer)
from synthetic import write_synthetic  # noqa: E402


def schedstat(pid: int) -> tuple[float, float]:
    """(run, runqueue) seconds of the process's main thread so far."""
    run, wait, _ = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
    return int(run) / 1e9, int(wait) / 1e9


@dataclass(frozen=True)
class Variant:
    """A tree, and the environment variables its worker runs with."""

    tree: Path
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Variant":
        path, _, settings = text.partition("@")
        env = tuple(tuple(item.split("=", 1)) for item in settings.split(",") if item)
        if any(len(pair) != 2 for pair in env):
            raise argparse.ArgumentTypeError(f"{text!r}: settings after @ are NAME=VALUE, comma-separated")
        return cls(Path(path), env)  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        return self.tree.name + "".join(f" {name}={value}" for name, value in self.env)


def one_run(variant: Variant, events: list, work: Path) -> dict:
    from aiokafka.admin import AIOKafkaAdminClient

    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker, free_port

    work.mkdir(parents=True)
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        asyncio.run(bench_peers.create_bench_topics(broker.bootstrap))
        expected = asyncio.run(bench_peers.publish(broker.bootstrap, events))
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=broker.bootstrap,
                   SEQUENCER_TOPIC_EVENTS=bench_peers.EVENTS_TOPIC,
                   SEQUENCER_TOPIC_DECISIONS=bench_peers.DECISIONS_TOPIC,
                   SEQUENCER_TOPIC_DEAD_LETTERS=bench_peers.DEAD_LETTERS_TOPIC, SEQUENCER_CONFIG_NAME="cpu",
                   **dict(variant.env))
        tree = variant.tree
        log_path = work / "worker.log"
        with log_path.open("w") as log:
            worker = subprocess.Popen([str(tree / ".venv" / "bin" / "python"), "-m", "sequencer.cli.main", "worker",
                                       "--state-dir", str(work / "state"), "--web-port", str(free_port())],
                                      env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tree)
            # The thread's times at the first and at the last commit poll that moved.
            marks: list[tuple[float, tuple[float, float]]] = []
            listed = AIOKafkaAdminClient.list_consumer_group_offsets

            async def listing(self, *args, **kwargs):
                answer = await listed(self, *args, **kwargs)
                marks.append((time.perf_counter(), schedstat(worker.pid), answer))
                return answer

            AIOKafkaAdminClient.list_consumer_group_offsets = listing
            try:
                first_at, first_done, last_at = asyncio.run(
                    bench_peers.time_commits(broker.bootstrap, "sequencer-cpu", expected, worker, log_path))
            finally:
                AIOKafkaAdminClient.list_consumer_group_offsets = listed
                worker.terminate()
                worker.wait(120)
    from sequencer.adapters.kafka.lag import _committed_in

    moved = [m for m in marks if sum(_committed_in(m[2], bench_peers.EVENTS_TOPIC).values())]
    (t0, (run0, wait0), a0), (t1, (run1, wait1), a1) = moved[0], moved[-1]
    events_timed = (sum(_committed_in(a1, bench_peers.EVENTS_TOPIC).values())
                    - sum(_committed_in(a0, bench_peers.EVENTS_TOPIC).values()))
    wall = t1 - t0
    run, wait = run1 - run0, wait1 - wait0
    return {"rate": (expected - first_done) / (last_at - first_at), "wall": wall, "run": run, "runqueue": wait,
            "idle": wall - run - wait, "cpu_us": 1e6 * run / events_timed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Variant.parse, action="append", required=True,
                        help="a checkout with its own .venv, optionally @NAME=VALUE,... for its worker's environment")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--days", type=int, default=10_000, help="synthetic trading days (x12 streams = events)")
    args = parser.parse_args()

    from sequencer.adapters.files.sources import read_day_events
    from sequencer.domain import SequencerConfig

    work = Path(tempfile.mkdtemp(prefix="bench-worker-cpu-"))
    csv_path = work / "synthetic.csv"
    write_synthetic(csv_path, args.days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
    events = read_day_events([csv_path], SequencerConfig()).events
    print(f"{len(events):,} day events, {os.cpu_count()} cores; work in {work}", flush=True)
    results: dict[Variant, list[dict]] = {variant: [] for variant in args.tree}
    for round_no in range(args.rounds):
        order = args.tree[round_no % len(args.tree):] + args.tree[:round_no % len(args.tree)]
        for number, variant in enumerate(order):
            found = one_run(variant, events, work / f"r{round_no}-{number}-{variant.tree.name}")
            results[variant].append(found)
            print(f"round {round_no + 1} {variant.name}: main thread {found['cpu_us']:.1f} us CPU/event; "
                  f"run {found['run']:.2f} s, runqueue {found['runqueue']:.2f} s, idle {found['idle']:.2f} s "
                  f"of {found['wall']:.2f} s; {found['rate']:,.0f} events/s; load {os.getloadavg()[0]:.1f}",
                  flush=True)
    print()
    for variant, runs in results.items():
        print(f"{variant.name}: main thread {statistics.median(r['cpu_us'] for r in runs):.1f} us CPU/event "
              f"(median of {len(runs)}; {min(r['cpu_us'] for r in runs):.1f}-{max(r['cpu_us'] for r in runs):.1f}), "
              f"idle {statistics.median(r['idle'] / r['wall'] for r in runs):.0%} of the wall time, "
              f"{statistics.median(r['rate'] for r in runs):,.0f} events/s")


if __name__ == "__main__":
    main()
