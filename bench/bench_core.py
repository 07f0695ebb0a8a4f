"""Core figures (issue 2), each as a ratio against a baseline measured in the same run.

    python bench/bench_core.py [--events 120000]

1. the fold alone: day events per second on one core;
2. `sequencer replay` of 120,000 day events (12 streams, 420,000 CSV rows), whole
   process, against bench/baseline_replay.py (pandas + deep copy per event);
3. `sequencer replay` of the real data set (data/sample, 15,926 day events);
4. memory of 100,000 stream states.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def best_of(runs: int, command: list[str]) -> float:
    times = []
    for _ in range(runs):
        if "--state-dir" in command:
            # Each run starts from no checkpoints, outside the timing (a replay
            # over existing ones is refused without --resume or --fresh).
            shutil.rmtree(command[command.index("--state-dir") + 1], ignore_errors=True)
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return min(times)


def fold_rate(events: list, config) -> float:
    from sequencer.domain import apply_day, initial_state

    gc.disable()
    try:
        best = 0.0
        for _ in range(3):
            states: dict = {}
            started = time.perf_counter()
            for event in events:
                state = states.get(event.stream)
                if state is None:
                    state = initial_state(event.stream, config)
                states[event.stream], _ = apply_day(state, event, config)
            best = max(best, len(events) / (time.perf_counter() - started))
        return best
    finally:
        gc.enable()


def memory_of_states(count: int) -> str:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "memory_states.py"), "--streams", str(count)],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=10_000, help="trading days x 12 streams = events")
    args = parser.parse_args()
    from synthetic import write_synthetic

    from sequencer.domain import SequencerConfig
    from sequencer.adapters.files.sources import read_day_events

    from bench_report import compile_tree

    compile_tree(ROOT)  # (as an installed package is)
    work = Path(tempfile.mkdtemp(prefix="bench-core-"))
    csv_path = work / "synthetic.csv"
    rows = write_synthetic(csv_path, args.days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
    config = SequencerConfig()
    events = read_day_events([csv_path], config).events
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"input: {len(events)} day events, {rows} CSV rows")

    rate = fold_rate(events, config)
    print(f"fold alone: {rate:,.0f} events/s (target >= 100,000)")

    sequencer = [sys.executable, "-m", "sequencer.cli.main"]
    ours = best_of(3, sequencer + ["replay", str(csv_path), "--out", str(work / "ours"), "--state-dir", str(work / "st")])
    one = best_of(3, sequencer + ["replay", str(csv_path), "--out", str(work / "one"), "--state-dir",
                                  str(work / "st-one"), "--jobs", "1"])
    baseline = best_of(1, [sys.executable, str(ROOT / "bench" / "baseline_replay.py"), str(csv_path), str(work / "base")])
    print(f"sequencer replay, whole process: {ours:.2f}s (target < 3 s), "
          f"streams split over {min(len(os.sched_getaffinity(0)), 8)} processes")
    print(f"  the same on one process (--jobs 1): {one:.2f}s")
    print(f"baseline (pandas + deepcopy per event): {baseline:.2f}s -> sequencer is {baseline / ours:.1f}x faster (target >= 4x)")

    real = best_of(3, sequencer + ["replay", str(ROOT / "data" / "sample"), "--out", str(work / "real"),
                                   "--state-dir", str(work / "st-real")])
    real_one = best_of(3, sequencer + ["replay", str(ROOT / "data" / "sample"), "--out", str(work / "real1"),
                                       "--state-dir", str(work / "st-real1"), "--jobs", "1"])
    print(f"real data (15,926 day events, 4 files), whole process: {real:.2f}s (target about 1 s; "
          f"the desk's previous processor: 22 s for one stream); one process: {real_one:.2f}s")

    print(f"memory: {memory_of_states(100_000)} (target < 500 MB)")


if __name__ == "__main__":
    main()
