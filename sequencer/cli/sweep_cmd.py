"""``sequencer sweep``: one history folded under a grid of configurations, ranked by a metric."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

from sequencer.adapters.files.config_file import load_config, load_rules
from ..domain import SequencerError
from ..domain.metrics import METRIC_NAMES
from sequencer.adapters.files.file_replay import available_cores
from sequencer.adapters.files.record_files import write_rejects_csv
from sequencer.adapters.files.sources import expand_inputs, read_day_events
from sequencer.app.sweep.grid import RULES_PREFIX, format_value, parse_grid_argument, plan_grid
from sequencer.app.sweep.runner import SweepWatch, run_sweep
from sequencer.app.sweep.sharing import TRADE_NEUTRAL_KEYS, group_points
from sequencer.app.sweep.table import (
    check_rank_metric,
    ranked,
    top_table,
    write_skipped_csv,
    write_streams_csv,
    write_sweep_csv,
)
from .replay_cmd import ReplayBars

DEFAULT_OUT = Path("out/sweep")
DEFAULT_RANK = "total_profit_usd"
#: Columns of the terminal table besides the grid keys and the ranking metric.
SHOWN_METRICS = ("trades", "win_rate", "total_profit_usd", "max_drawdown_usd", "sharpe", "profit_factor")
#: Impossible combinations listed on the terminal (all are in sweep_skipped.csv).
SKIPPED_SHOWN = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep", help="fold one history under a grid of configurations and rank them by a metric",
        description="Read the input once, fold it under every configuration of the grid (the "
                    "cartesian product of the --grid values over the --config file), and write "
                    "DIR/sweep.csv (one row per configuration, ranked) and DIR/sweep_streams.csv "
                    "(per configuration and stream). Each row equals `sequencer replay` under that "
                    "configuration followed by `sequencer report`.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a SPEC 2 key (depth, median_position, promotion_days, max_target_pct, "
                             "target_mode, time_change, no_trade_on_low_median, start_slot) or "
                             "rules.KEY (skip_weekdays, skip_days_of_month, skip_after_loss, "
                             "min_slot_sum) and its values; a list value as Mon+Fri, none for "
                             "null or an empty list; repeat for more keys")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="the base configuration (JSON or TOML; default: built-in defaults)")
    parser.add_argument("--rank-by", default=DEFAULT_RANK, metavar="METRIC",
                        help=f"SPEC 8.3 metric of all streams to rank by, highest first "
                             f"(default {DEFAULT_RANK})")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="configurations shown on the terminal (default 10; 0 for none)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                        help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="processes to split the folds across (default: one per core)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    # Everything that can be refused is checked before the input is read.
    rank_by = check_rank_metric(args.rank_by, METRIC_NAMES)
    if args.top < 0:
        raise _usage(f"--top must be 0 or more, got {args.top}")
    if args.jobs is not None and args.jobs < 1:
        raise _usage(f"--jobs must be at least 1, got {args.jobs}")
    config = load_config(args.config)
    base_rules = load_rules(args.config)  # the config file's rules table, the grid's base
    axes = [parse_grid_argument(text) for text in args.grid]
    plan = plan_grid(axes, config, base_rules.to_dict())
    groups = group_points(plan.points)
    paths = expand_inputs(args.inputs)
    if args.out.exists() and not args.out.is_dir():
        raise _usage(f"--out {args.out} is a file, not a folder")
    jobs = args.jobs or available_cores()

    gc.disable()  # as replay: millions of small acyclic objects, freed by reference counting
    try:
        with ReplayBars(sum(p.stat().st_size for p in paths)) as bars:
            watch = bars.watch()
            batch = read_day_events(paths, config, on_bytes=watch.on_read)
            read_s = time.perf_counter() - started
            outcome = run_sweep(batch.events, groups, jobs=jobs,
                                watch=SweepWatch(on_total=watch.on_total, on_progress=watch.on_progress))
    except KeyboardInterrupt:
        print(f"sequencer: sweep interrupted; nothing written to {args.out}", file=sys.stderr)
        return 130
    finally:
        gc.enable()

    rows = ranked(outcome.rows, rank_by)
    args.out.mkdir(parents=True, exist_ok=True)
    write_sweep_csv(args.out / "sweep.csv", plan.axes, rows, METRIC_NAMES)
    write_streams_csv(args.out / "sweep_streams.csv", plan.axes, rows, METRIC_NAMES)
    write_skipped_csv(args.out / "sweep_skipped.csv", plan.axes, plan.skipped)
    write_rejects_csv(args.out / "rejects.csv", batch.rejects)
    elapsed = time.perf_counter() - started
    write_manifest(args.out / "sweep.json", args, paths, plan, rank_by, outcome.times,
                   len(batch.events), read_s, elapsed, min(jobs, len(groups)))

    for point in plan.skipped[:SKIPPED_SHOWN]:
        values = ", ".join(f"{a.key}={format_value(v)}" for a, v in zip(plan.axes, point.values))
        print(f"skipped {values}: {point.reason}", file=sys.stderr)
    if len(plan.skipped) > SKIPPED_SHOWN:
        print(f"... and {len(plan.skipped) - SKIPPED_SHOWN} more skipped, all in "
              f"{args.out / 'sweep_skipped.csv'}", file=sys.stderr)
    neutral = [axis.key for axis in plan.axes if axis.key in TRADE_NEUTRAL_KEYS and len(axis.values) > 1]
    if neutral:
        print(f"note: {', '.join(neutral)} change{'s' if len(neutral) == 1 else ''} no trade (a trade's "
              f"profit is the recorded one, SPEC 8.1), so configurations differing only there have "
              f"equal metrics", file=sys.stderr)
    times = outcome.times
    print(f"swept {len(plan.points)} configurations ({len(plan.skipped)} skipped as impossible) over "
          f"{len(batch.events)} day events ({batch.rows} rows, {len(batch.rejects)} rejected) in "
          f"{elapsed:.2f}s on {_processes(min(jobs, len(groups)))}: {_count(times.folds, 'fold')} shared by "
          f"the configurations, {_count(times.evaluations, 'report')}; read {read_s:.2f}s, fold "
          f"{times.fold_s:.2f}s, report {times.evaluate_s:.2f}s (summed over processes) "
          f"-> {args.out / 'sweep.csv'}")
    if args.top and rows:
        shown = [rank_by] + [m for m in SHOWN_METRICS if m != rank_by]
        print(f"top {min(args.top, len(rows))} by {rank_by}:")
        print(top_table(plan.axes, rows[:args.top], shown))
    return 0


def write_manifest(path: Path, args: argparse.Namespace, paths: list[Path], plan: Any, rank_by: str,
                   times: Any, events: int, read_s: float, elapsed: float, jobs: int) -> None:
    """What the sweep ran: enough for the UI to replay any row's configuration."""
    doc = {
        "inputs": [str(p.resolve()) for p in paths],
        "config": str(args.config.resolve()) if args.config else None,
        "grid": {axis.key: [format_value(v) for v in axis.values] for axis in plan.axes},
        "rule_keys": [axis.key for axis in plan.axes if axis.key.startswith(RULES_PREFIX)],
        "rank_by": rank_by,
        "configurations": len(plan.points),
        "skipped": len(plan.skipped),
        "day_events": events,
        "folds": times.folds,
        "reports": times.evaluations,
        "jobs": jobs,
        "seconds": {"total": round(elapsed, 3), "read": round(read_s, 3),
                    "fold": round(times.fold_s, 3), "report": round(times.evaluate_s, 3)},
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _processes(jobs: int) -> str:
    return "1 process" if jobs == 1 else f"{jobs} processes"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _usage(message: str) -> SequencerError:
    return SequencerError(message)
