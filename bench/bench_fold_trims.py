"""The fold and the decision encoder against a baseline commit, in one run (issue 18):

    python bench/bench_fold_trims.py [--days 10000] [--rounds 5] [--baseline REF]

The baseline (default: the merge-base with main) is exported with
`git archive` and run by the same interpreter. Each round runs, for the
baseline and then for this code, each in a fresh process so both see the same
load:

1. the fold alone (`bench_core.fold_rate`: `apply_day` over the 120,000
   synthetic events, best of 3 passes), events per second on one core;
2. `encode_decision` of every decision of that fold, µs per decision;
3. `sequencer replay` of the same events, whole process (interpreter start
   to exit), wall and CPU time, on one process (`--jobs 1`) and split as
   replay chooses.

Medians over the rounds, and this code / baseline ratios. The machine is
shared: read the ratios, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import CPU, ROOT, baseline_ref, export_baseline, timed  # noqa: E402

#: Run inside the measured tree (its own bench/bench_core.py and sequencer):
#: prints {"fold": events/s, "encode_us": µs per decision}.
_PARTS = r"""
import gc, json, sys, time
from pathlib import Path
sys.path.insert(0, "bench")
from bench_core import fold_rate
from sequencer.app.codecs import encode_decision
from sequencer.domain import SequencerConfig, apply_day, initial_state
from sequencer.adapters.files.sources import read_day_events
config = SequencerConfig()
events = read_day_events([Path(sys.argv[1])], config).events
rate = fold_rate(events, config)
states, decisions = {}, []
for event in events:
    state = states.get(event.stream) or initial_state(event.stream, config)
    states[event.stream], decision = apply_day(state, event, config)
    decisions.append(decision)
gc.disable()
best = float("inf")
for _ in range(3):
    started = time.perf_counter()
    for decision in decisions:
        encode_decision(decision)
    best = min(best, time.perf_counter() - started)
print(json.dumps({"fold": rate, "encode_us": best / len(decisions) * 1e6}))
"""


def main() -> int:
    from synthetic import write_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default=None, help="git ref of the baseline (default: merge-base with main)")
    args = parser.parse_args()
    ref = baseline_ref(args.baseline)
    with tempfile.TemporaryDirectory(prefix="bench-fold-trims-") as folder:
        work = Path(folder)
        trees = {"baseline": work / "baseline", "this code": ROOT}
        trees["baseline"].mkdir()
        commit = export_baseline(ref, trees["baseline"])
        data = work / "synthetic.csv"
        rows = write_synthetic(data, args.days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
        figures: dict[str, dict[str, list[float]]] = {name: {} for name in trees}

        def note(name: str, key: str, value: float) -> None:
            figures[name].setdefault(key, []).append(value)

        for i in range(args.rounds):
            for name, tree in trees.items():  # alternate, so both see the same load
                env = dict(os.environ, PYTHONPATH=str(tree))
                parts = subprocess.run([sys.executable, "-c", _PARTS, str(data)], env=env, cwd=tree,
                                       capture_output=True, text=True, check=True)
                for key, value in json.loads(parts.stdout).items():
                    note(name, key, value)
                for jobs in (["--jobs", "1"], []):
                    label = "replay, 1 process" if jobs else "replay, split"
                    out = work / f"{name.replace(' ', '-')}{i}{len(jobs)}"
                    wall = timed([sys.executable, "-m", "sequencer.cli.main", "replay", str(data), "--out",
                                  str(out), "--state-dir", str(out / "state"), *jobs], env=env, cwd=work)
                    note(name, f"{label} wall s", wall)
                    note(name, f"{label} CPU s", CPU[-1])

    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"input: {rows} CSV rows; {args.rounds} rounds; baseline {commit[:7]}")
    print(f"{'figure (median)':28s} {'baseline':>12s} {'this code':>12s} {'ratio':>7s}")
    for key in figures["baseline"]:
        old, new = statistics.median(figures["baseline"][key]), statistics.median(figures["this code"][key])
        print(f"{key:28s} {old:12,.2f} {new:12,.2f} {new / old:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
