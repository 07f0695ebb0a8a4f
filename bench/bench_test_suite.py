"""How long the test suite takes in one process and in pytest-xdist processes, in the same run.

    .venv/bin/python bench/bench_test_suite.py [--workers 2] [--rounds 1] [-- PYTEST ARGS]

Runs ``python -m pytest -q -n 0`` (the baseline) and ``-n WORKERS`` one after
the other, ``--rounds`` times, and prints each wall time, the ratio, and the
load average before each run (the machine may be shared: compare ratios of the
same round, not times across days). Every run must pass; a failed one is
reported and stops the benchmark.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_suite(workers: int, extra: list[str]) -> float:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers), *extra]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"  -n {workers}: {seconds:7.1f} s  {summary}", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"pytest -n {workers} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (e.g. tests/unit)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_}: load average {os.getloadavg()[0]:.1f} before the baseline", flush=True)
        serial = run_suite(0, args.pytest_args)
        print(f"  load average {os.getloadavg()[0]:.1f} before -n {args.workers}", flush=True)
        parallel = run_suite(args.workers, args.pytest_args)
        print(f"  -n {args.workers} takes {parallel / serial:.2f} of the one-process time")


if __name__ == "__main__":
    main()
