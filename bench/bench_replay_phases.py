"""Where one process of `sequencer replay` spends its CPU, phase by phase, this
code against a baseline commit (default: where this branch left main).

    python bench/bench_replay_phases.py [--days 10000] [--rounds 3] [--baseline REF]

Each round runs a fresh interpreter per tree, alternately; each times, in CPU
seconds (``time.process_time``: all threads), the imports of the replay path,
reading the input (for this code: parsing and checking, then building the day
events), the fold, the decisions.csv writer, the performance report and the
checkpoints, as ``file_replay`` strings them together on one process. The
least of the rounds per phase (the machine is shared: the least is the one
the others disturbed least).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import machine_and_load, trees_and_workload  # noqa: E402

_PROBE = """
import gc, io, json, sys, tempfile, time
from pathlib import Path
cpu = time.process_time
phases = {}
mark = cpu()
from sequencer.adapters.files import sources
from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.adapters.files.record_files import DecisionCsvWriter
from sequencer.app.replay import replay_events
from sequencer.domain import SequencerConfig, TradeRules, merge_report_parts
from sequencer.domain.metrics import StreamDecisions
phases["imports"] = cpu() - mark
gc.disable()  # as sequencer replay does
config, rules, paths = SequencerConfig(), TradeRules(), [Path(p) for p in sys.argv[1:]]
mark = cpu()
if hasattr(sources, "read_sources"):
    read = sources.read_sources(paths, config)
    phases["read: parse and check"] = cpu() - mark
    mark = cpu()
    events = read.events()
    phases["read: build day events"] = cpu() - mark
else:
    events = sources.read_day_events(paths, config).events
    phases["read: parse and check"] = cpu() - mark
decisions = []
mark = cpu()
result = replay_events(events, config, {}, on_decision=decisions.append)
phases["fold"] = cpu() - mark
mark = cpu()
with open(tempfile.mktemp(), "w", newline="", encoding="utf-8") as handle:
    writer = DecisionCsvWriter(handle)
    for decision in decisions:
        writer.write(decision)
    getattr(writer, "flush", lambda: None)()  # (a writer that batches its rows)
phases["decisions.csv"] = cpu() - mark
mark = cpu()
kept = StreamDecisions.for_rules(rules)
for decision in decisions:
    kept.add(decision)
merge_report_parts([kept.report_part(rules, breakdowns=False)], rules)
phases["performance report"] = cpu() - mark
mark = cpu()
CheckpointStore(Path(tempfile.mkdtemp()), config).save_all(result.states[s] for s in sorted(result.states))
phases["checkpoints"] = cpu() - mark
print(json.dumps(phases))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", default=None, help="git ref of the baseline (default: merge-base with main)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-phases-") as folder:
        work = Path(folder)
        commit, data, trees = trees_and_workload(work, args.baseline, args.days)
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                done = subprocess.run([sys.executable, "-c", _PROBE, str(data)], capture_output=True, text=True,
                                      check=True, cwd=work, env=dict(os.environ, PYTHONPATH=str(tree)))
                runs[name].append(json.loads(done.stdout))
    print(f"{machine_and_load()}; {args.days * 12:,} day events; "
          f"baseline {commit[:7]}; least CPU s of {args.rounds} rounds")
    phases = list(dict.fromkeys(p for name in reversed(list(trees)) for run in runs[name] for p in run))
    print("| phase | baseline | this code |")
    print("|---|---|---|")
    totals = {}
    for phase in phases:
        cells = []
        for name in trees:
            values = [run[phase] for run in runs[name] if phase in run]
            cells.append(f"{min(values):.3f}" if values else "-")
            totals[name] = totals.get(name, 0.0) + (min(values) if values else 0.0)
        print(f"| {phase} | {' | '.join(cells)} |")
    print(f"| sum | {totals['baseline']:.3f} | {totals['this code']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
