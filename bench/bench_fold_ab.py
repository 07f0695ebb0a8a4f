"""The fold alone, this code against a baseline commit's fold, in one process (issue 18):

    python bench/bench_fold_ab.py [--days 10000] [--rounds 7] [--baseline REF]

The baseline's ``sequencer/domain/fold.py`` (default: the merge-base with
main) is loaded beside this code's, as a module of this package, so both fold
the same 120,000 synthetic day events (bench/synthetic.py) from the same
states with the same config, alternating pass by pass. Each pass is timed in
CPU time of this process (``time.process_time``): on the shared 2-core
machine wall time moves with the other engineers' load far more than CPU time
does. Before timing, every decision and final state of both folds are compared
(``repr``, so 10 and 10.0, 0.0 and -0.0 differ): the script refuses to report
a rate for a fold that changed an output.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import ROOT, baseline_ref  # noqa: E402


def baseline_fold(ref: str):
    """The ``apply_day`` of ``ref``'s fold.py, imported as ``sequencer.domain._baseline_fold``."""
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:sequencer/domain/fold.py"],
                            capture_output=True, text=True, check=True).stdout
    spec = importlib.util.spec_from_loader("sequencer.domain._baseline_fold", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "sequencer.domain"
    exec(compile(source, f"{ref}:sequencer/domain/fold.py", "exec"), module.__dict__)
    return module.apply_day


def rate(apply_day, events, config) -> float:
    from sequencer.domain import initial_state

    states: dict = {}
    started = time.process_time()
    for event in events:
        state = states.get(event.stream)
        if state is None:
            state = initial_state(event.stream, config)
        states[event.stream], _ = apply_day(state, event, config)
    return len(events) / (time.process_time() - started)


def same_outputs(old, new, events, config) -> None:
    from sequencer.domain import initial_state

    states_old: dict = {}
    states_new: dict = {}
    for event in events:
        name = event.stream
        state_old, decision_old = old(states_old.get(name) or initial_state(name, config), event, config)
        state_new, decision_new = new(states_new.get(name) or initial_state(name, config), event, config)
        if repr(decision_old) != repr(decision_new) or repr(state_old) != repr(state_new):
            raise SystemExit(f"the folds differ on {name} {event.date}:\n{decision_old}\n{decision_new}")
        states_old[name], states_new[name] = state_old, state_new


def main() -> int:
    from synthetic import write_synthetic

    from sequencer.domain import SequencerConfig, apply_day
    from sequencer.adapters.files.sources import read_day_events

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--baseline", default=None, help="git ref of the baseline (default: merge-base with main)")
    args = parser.parse_args()

    ref = baseline_ref(args.baseline)
    old = baseline_fold(ref)
    config = SequencerConfig()
    with tempfile.TemporaryDirectory(prefix="bench-fold-") as folder:
        data = Path(folder) / "synthetic.csv"
        write_synthetic(data, args.days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
        events = read_day_events([data], config).events
    same_outputs(old, apply_day, events, config)
    gc.disable()  # the fold allocates only acyclic tuples; replay runs it with the collector off too
    rates: dict[str, list[float]] = {"baseline": [], "this code": []}
    for _ in range(args.rounds):
        rates["baseline"].append(rate(old, events, config))
        rates["this code"].append(rate(apply_day, events, config))
    load = os.getloadavg()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"{len(events)} day events, {args.rounds} alternating passes each, CPU time; baseline {ref[:7]}; "
          "every decision and state the same")
    for name, values in rates.items():
        print(f"{name}: best {max(values):,.0f} events/s, median {sorted(values)[len(values) // 2]:,.0f}")
    print(f"ratio (this / baseline, best): {max(rates['this code']) / max(rates['baseline']):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
