"""Where the wall time of one `sequencer replay` goes, process by process:
this code against a baseline commit (default: where this branch left main).

    python bench/bench_replay_timeline.py [--days 10000] [--rounds 3] [--jobs N] [--baseline REF]

Each round runs the whole command once per tree, alternately, in a fresh
interpreter, with the phases of ``file_replay`` wrapped to note when each
starts and ends (seconds since the command was launched) and its CPU time:
in the parent, its imports, the read, the wait for the partitions, the
decision merge and the report's ``all`` row; in each forked partition, its
day events, the fold (with the decisions.csv writer and the report's fields
kept), its report part and checkpoints. Printed: the median of the rounds
per phase, and the critical path. The wrapping costs a few microseconds per
phase, nothing per event.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import machine_and_load, trees_and_workload  # noqa: E402

_PROBE = r"""
import json, os, sys, time
T0 = float(os.environ["BENCH_T0"])
cpu = time.process_time
NOTES = os.environ["BENCH_NOTES"]
def note(phase, start, end, used):
    # one short write to a file opened for appending: the processes' lines never mix
    with open(NOTES, "a") as notes:
        notes.write(json.dumps([os.getpid(), phase, start, end, used]) + "\n")
up = time.time() - T0
import sequencer.cli.main as main
import sequencer.cli.replay_cmd as replay_cmd
import sequencer.adapters.files.file_replay as file_replay
import sequencer.adapters.files.sources as sources
import sequencer.adapters.files.checkpoints as checkpoints
import sequencer.domain.metrics as metrics
note("interpreter start", 0.0, up, 0.0)
note("imports", up, time.time() - T0, cpu())
def wrap(owner, name, phase):
    found = getattr(owner, name, None)
    if found is None:
        return
    def wrapped(*args, **kwargs):
        start, used = time.time() - T0, cpu()
        try:
            return found(*args, **kwargs)
        finally:
            note(phase, start, time.time() - T0, cpu() - used)
    setattr(owner, name, wrapped)
wrap(file_replay, "read_sources", "read (parse, check)")
wrap(sources.SourceRead, "events_in_order", "day events")
wrap(sources.SourceRead, "events", "day events")
wrap(file_replay, "replay_events", "fold + decisions.csv + report fields")
wrap(metrics.StreamDecisions, "report_part", "report part")
wrap(checkpoints.CheckpointStore, "save_all", "checkpoints")
wrap(file_replay, "_collect", "wait for the partitions")
wrap(file_replay, "_interleave_decisions", "merge decisions")
wrap(file_replay, "_merge_decisions", "merge decisions")
wrap(file_replay, "write_rejects_csv", "rejects.csv")
wrap(replay_cmd, "merge_report_parts", "report: all row")
wrap(replay_cmd, "write_performance", "performance.csv")
wrap(file_replay, "_fold_partition", "fold part (fold, report part, checkpoints)")
partition = file_replay._partition_main
def partition_main(*args, **kwargs):
    now = time.time() - T0
    note("forked", now, now, 0.0)  # (a partition may end by os._exit: nothing is noted after it)
    partition(*args, **kwargs)
file_replay._partition_main = partition_main
try:
    main.main(sys.argv[1:])
finally:
    note("whole process", 0.0, time.time() - T0, cpu())
"""


def run(tree: Path, data: Path, out: Path, jobs: list[str]) -> list[list]:
    notes = out / "timeline.jsonl"
    env = dict(os.environ, PYTHONPATH=str(tree), BENCH_NOTES=str(notes), BENCH_T0=repr(time.time()))
    done = subprocess.run([sys.executable, "-c", _PROBE, "replay", str(data), "--out", str(out / "out"),
                           "--state-dir", str(out / "state"), *jobs], env=env, cwd=out, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SystemExit(f"replay failed in {tree}:\n{done.stderr[-2000:]}")
    return [json.loads(line) for line in notes.read_text().splitlines()]


def by_role(notes: list[list]) -> dict[str, list[float]]:
    """(role, phase) -> [start, end, cpu]; partitions by their order of start, the parent first."""
    parent = notes[-1][0]  # "whole process" comes last, from the parent
    children = sorted({pid for pid, *_ in notes if pid != parent},
                      key=lambda pid: min(n[2] for n in notes if n[0] == pid))
    roles = {parent: "parent", **{pid: f"partition {i}" for i, pid in enumerate(children)}}
    return {f"{roles[pid]}: {phase}": [start, end, used] for pid, phase, start, end, used in notes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", default=None, help="replay --jobs (default: replay's own choice)")
    parser.add_argument("--baseline", default=None, help="git ref of the baseline (default: merge-base with main)")
    args = parser.parse_args()
    jobs = ["--jobs", args.jobs] if args.jobs else []
    with tempfile.TemporaryDirectory(prefix="bench-timeline-") as folder:
        work = Path(folder)
        commit, data, trees = trees_and_workload(work, args.baseline, args.days)
        rounds: dict[str, list[dict]] = {name: [] for name in trees}
        for i in range(args.rounds):
            for name, tree in trees.items():
                out = work / f"{name.replace(' ', '-')}{i}"
                out.mkdir()
                rounds[name].append(by_role(run(tree, data, out, jobs)))
    print(f"{machine_and_load()}; {args.days * 12:,} day events; "
          f"baseline {commit[:7]}; medians of {args.rounds} rounds; s since launch: start -> end (CPU s)")
    phases = list(dict.fromkeys(key for name in reversed(list(trees)) for run_ in rounds[name] for key in run_))
    phases.sort(key=lambda key: statistics.median(r[key][1] for r in rounds["this code"] if key in r)
                if any(key in r for r in rounds["this code"]) else 99)
    print("| process: phase | baseline | this code |")
    print("|---|---|---|")
    for key in phases:
        cells = []
        for name in trees:
            found = [r[key] for r in rounds[name] if key in r]
            if not found:
                cells.append("-")
                continue
            start, end, used = (statistics.median(value[i] for value in found) for i in range(3))
            cells.append(f"{start:.2f} -> {end:.2f} ({used:.2f})")
        print(f"| {key} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
