"""``sequencer replay``: fold files into decisions and checkpoints, without a broker."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

from ..domain.events import parse_iso_date
from ..config_file import load_rules
from ..domain import merge_report_parts
from ..file_replay import PerformanceOf, ReplayWatch, choose_jobs, replay_files
from ..sources import expand_inputs
from .common import add_config_arguments, add_rules_argument, selected_config, selected_store
from .performance_view import write_performance
from .progress import progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="fold day-event files into decisions and per-stream checkpoints",
        description="Read long-format CSV/Parquet/JSON-lines files, fold them in date order, write "
                    "DIR/decisions.csv, DIR/rejects.csv and one checkpoint per stream.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    add_config_arguments(parser)
    add_rules_argument(parser)
    parser.add_argument("--resume", action="store_true",
                        help="start from existing checkpoints; apply only events after each "
                             "stream's last_processed_date")
    parser.add_argument("--until", default=None, metavar="DATE",
                        help="apply events up to and including this ISO date")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="processes to split the streams across (default: one per core, "
                             "up to 8, for inputs over 2 MB; 1 otherwise)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    config = selected_config(args)
    rules = load_rules(args.config, args.rules)  # refused before any work
    store = selected_store(args, config)
    until = parse_iso_date(args.until, "--until") if args.until else None
    states = {}
    if args.resume:
        loaded, refused = store.load_all()
        if refused:
            for error in refused:
                print(f"sequencer: refused {error}", file=sys.stderr)
            print("sequencer: fix or clear the refused checkpoints (sequencer state clear STREAM) "
                  "before resuming; nothing was written", file=sys.stderr)
            return 2
        states = {stream: cp.state for stream, cp in loaded.items()}

    paths = expand_inputs(args.inputs)
    jobs = choose_jobs(paths, args.jobs)
    # Reading and folding build millions of small acyclic objects (tuples,
    # records); the cyclic GC would rescan them again and again for nothing
    # (measured: a third of the replay's time). Reference counting frees them.
    gc.disable()
    try:
        with ReplayBars(sum(p.stat().st_size for p in paths)) as bars:
            summary = replay_files(paths, config, states, args.out, store, until=until, jobs=jobs,
                                   watch=bars.watch(),
                                   keep=PerformanceOf(rules))
    finally:
        gc.enable()
    elapsed = time.perf_counter() - started
    print(
        f"replayed {summary.events} day events ({summary.rows} rows) into {summary.streams} streams "
        f"in {elapsed:.2f}s ({_processes(jobs)}): {summary.applied} applied, "
        f"{summary.already_applied} already applied, "
        f"{summary.after_until} after --until, {len(summary.rejects)} rejected "
        f"-> {args.out / 'decisions.csv'}, checkpoints in {store.folder}"
    )
    print(write_performance(args.out, merge_report_parts(summary.performance, rules)))
    return 0


def _processes(jobs: int) -> str:
    return "1 process" if jobs == 1 else f"{jobs} processes"


class ReplayBars:
    """Two bars in turn: bytes read (with ETA from the input's size), then events folded."""

    def __init__(self, input_bytes: int) -> None:
        self.input_bytes = input_bytes
        self.bar = None

    def __enter__(self) -> "ReplayBars":
        self.bar = progress_bar(self.input_bytes, "read", unit="B")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()

    def watch(self) -> ReplayWatch:
        return ReplayWatch(on_read=self._advance, on_total=self._folding, on_progress=self._advance)

    def _advance(self, count: int) -> None:
        self.bar.update(count)

    def _folding(self, events: int) -> None:
        self.bar.close()
        self.bar = progress_bar(events, "fold")
