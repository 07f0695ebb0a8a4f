"""Start-up cost of the settings: importing ``sequencer.settings`` (pydantic-settings).

Times, in fresh interpreters, ``python -c pass`` (the baseline, measured in
the same run) and ``python -c "import MODULE"`` for the settings, the Kafka
connection module and a full ``Settings.from_env()``; prints the medians and
their excess over the baseline, and the cumulative import time of
``sequencer.settings`` that ``python -X importtime`` reports.

    .venv/bin/python bench/bench_settings_import.py [--runs 21] [--python PY]

``--python`` times another interpreter (e.g. another checkout's venv, for a
before/after on the same machine in the same run).
"""

from __future__ import annotations

import argparse
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
    "import sequencer.settings": "import sequencer.settings",
    "Settings.from_env()": "from sequencer.settings import Settings; Settings.from_env()",
}


def wall_ms(python: str, code: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([python, "-c", code], check=True, capture_output=True, cwd=NEUTRAL_CWD)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


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
    for python in args.python or [sys.executable]:
        print(f"{python} ({args.runs} runs each, medians)")
        base = None
        for label, code in SNIPPETS.items():
            ms = wall_ms(python, code, args.runs)
            base = ms if base is None else base
            extra = "" if ms is base else f"  (+{ms - base:.1f} ms, {ms / base:.2f}x the baseline)"
            print(f"  {label:30} {ms:7.1f} ms{extra}")
        print(f"  {'-X importtime sequencer.settings':30} {importtime_ms(python, 'sequencer.settings', args.runs):7.1f} ms"
              " (cumulative)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
