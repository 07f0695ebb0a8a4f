"""Start-up cost of the settings: importing ``sequencer.settings`` (pydantic-settings).

Times, in fresh interpreters, ``python -c pass`` (the baseline, measured in
the same run) and ``python -c "import MODULE"`` for the settings, a full
``Settings.from_env()`` and the worker's ``sequencer.adapters.faust.worker``; prints the
medians and their excess over the baseline, and the cumulative import time of
``sequencer.settings`` that ``python -X importtime`` reports.

    .venv/bin/python bench/bench_settings_import.py [--runs 21] [--python PY]

``--python`` times another interpreter (e.g. another checkout's venv, for a
before/after on the same machine in the same run).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

#: Run outside any checkout, so each interpreter imports the package it has installed.
NEUTRAL_CWD = tempfile.gettempdir()

SNIPPETS = {
    "baseline (python -c pass)": "pass",
    # the package imports pydantic only when a pydantic-backed name is first used
    "import StateLocation (no pydantic)": "from sequencer.settings import StateLocation",
    "import Settings (pydantic-settings)": "from sequencer.settings import Settings",
    "Settings.from_env()": "from sequencer.settings import Settings; Settings.from_env()",
    # what a worker process imports before it starts (Faust, aiokafka, settings)
    "import sequencer.adapters.faust.worker": "import sequencer.adapters.faust.worker",
}


def wall_ms(pythons: list[str], code: str, runs: int) -> dict[str, float]:
    """Median wall time of ``python -c code`` per interpreter, runs interleaved
    (so that a change of the machine's load falls on all of them alike)."""
    times: dict[str, list[float]] = {python: [] for python in pythons}
    for _ in range(runs):
        for python in pythons:
            started = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, capture_output=True, cwd=NEUTRAL_CWD)
            times[python].append((time.perf_counter() - started) * 1000)
    return {python: statistics.median(found) for python, found in times.items()}


def importtime_ms(python: str, module: str, runs: int) -> float:
    found = []
    for _ in range(runs):
        done = subprocess.run([python, "-X", "importtime", "-c", f"import {module}"],
                              check=True, capture_output=True, text=True, cwd=NEUTRAL_CWD)
        for line in done.stderr.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| " + re.escape(module) + "$", line)
            if match:
                found.append(int(match.group(1)) / 1000)
    return statistics.median(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--python", action="append", default=None,
                        help="interpreter(s) to time (default: this one); repeat for several")
    args = parser.parse_args()
    pythons = [os.path.abspath(p) for p in args.python or [sys.executable]]
    walls = {label: wall_ms(pythons, code, args.runs) for label, code in SNIPPETS.items()}
    for python in pythons:
        print(f"{python} ({args.runs} runs each, interleaved, medians)")
        base = walls["baseline (python -c pass)"][python]
        for label in SNIPPETS:
            ms = walls[label][python]
            extra = "" if ms == base else f"  (+{ms - base:.1f} ms, {ms / base:.2f}x the baseline)"
            print(f"  {label:34} {ms:7.1f} ms{extra}")
        # (the package alone: since StateLocation it no longer imports pydantic, see the second line)
        print(f"  {'-X importtime sequencer.settings':34} "
              f"{importtime_ms(python, 'sequencer.settings', args.runs):7.1f} ms (cumulative)")
        print(f"  {'-X importtime pydantic_settings':34} "
              f"{importtime_ms(python, 'pydantic_settings', args.runs):7.1f} ms (cumulative)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
