"""``sequencer replay``: fold files into decisions and checkpoints, without a broker."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sequencer.adapters.files.checkpoints import CheckpointStore
from ..domain import SequencerConfig, TradeRules, merge_report_parts
from ..domain.events import parse_iso_date
from sequencer.adapters.files.config_file import load_rules
from sequencer.adapters.files.file_replay import PerformanceOf, ReplayWatch, choose_jobs, replay_files
from sequencer.adapters.files.file_writes import check_folder
from sequencer.adapters.files.sources import expand_inputs
from sequencer.adapters.files.state_folder import back_up_checkpoints
from .common import add_config_arguments, add_rules_argument, selected
from .performance_view import write_performance
from ..adapters.progress import progress_bar


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="fold day-event files into decisions and per-stream checkpoints",
        description="Read long-format CSV/Parquet/JSON-lines files, fold them in date order, write "
                    "DIR/decisions.csv, DIR/rejects.csv and one checkpoint per stream.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    add_config_arguments(parser)
    add_rules_argument(parser)
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true",
                       help="start from existing checkpoints; apply only events after each "
                            "stream's last_processed_date (earlier days go to rejects.csv, as the "
                            "worker dead-letters them)")
    start.add_argument("--fresh", action="store_true",
                       help="start over: move existing checkpoints to a timestamped backup folder "
                            "first (without --resume or --fresh, a replay over existing "
                            "checkpoints is refused)")
    parser.add_argument("--until", default=None, metavar="DATE",
                        help="apply events up to and including this ISO date")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="processes to split the streams across (default: one per core, "
                             "up to 8, for inputs over 2 MB; 1 otherwise)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    check_folder(args.out, "--out")
    settings, config, store = selected(args)
    rules = load_rules(settings.config_file, args.rules)  # refused before any work
    progress = _Progress()
    try:
        return _replay(args, config, rules, store, started, progress)
    except KeyboardInterrupt:
        if progress.committed:
            print(f"sequencer: interrupted after the replay had finished: {args.out / 'decisions.csv'}, "
                  f"rejects.csv and the checkpoints in {store.folder} are all written", file=sys.stderr)
            return 130
        # Checkpoints change only once a replay has written all its outputs
        # (file_replay), so an interrupted one changed none.
        moved = f" (--fresh had moved the earlier ones to {progress.backup})" if progress.backup else ""
        print(f"sequencer: replay interrupted: no checkpoint was written to {store.folder}{moved} and "
              f"{args.out / 'decisions.csv'} was not written", file=sys.stderr)
        return 130


@dataclass
class _Progress:
    """How far a replay got, for the message of an interrupted one."""

    backup: Path | None = None  # where --fresh moved the old checkpoints
    committed: bool = False     # every output, checkpoints included, is in place

    def commit(self) -> None:
        self.committed = True


def _replay(args: argparse.Namespace, config: SequencerConfig, rules: TradeRules, store: CheckpointStore,
            started: float, progress: _Progress) -> int:
    until = parse_iso_date(args.until, "--until") if args.until else None
    paths = expand_inputs(args.inputs)
    jobs = choose_jobs(paths, args.jobs)
    if not args.resume and store.files():
        if not args.fresh:
            print(f"sequencer: {store.folder} holds {len(store.files())} checkpoints and this replay "
                  "would overwrite them: pass --resume to continue from them, or --fresh to start over "
                  f"(they move to {store.folder / 'backup.<UTC time>'} first); nothing was written",
                  file=sys.stderr)
            return 2
        progress.backup, moved = back_up_checkpoints(store)
        print(f"--fresh: moved {len(moved)} checkpoints from {store.folder} to {progress.backup}",
              file=sys.stderr)
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

    # Reading and folding build millions of small acyclic objects (tuples,
    # records); the cyclic GC would rescan them again and again for nothing
    # (measured: a third of the replay's time). Reference counting frees them.
    gc.disable()
    try:
        with ReplayBars(sum(p.stat().st_size for p in paths)) as bars:
            watch = bars.watch()
            watch.on_committed = progress.commit
            summary = replay_files(paths, config, states, args.out, store, until=until, jobs=jobs,
                                   watch=watch,
                                   keep=PerformanceOf(rules))
    finally:
        gc.enable()
    elapsed = time.perf_counter() - started
    refused = f" ({summary.refused} at or before a stream's last processed date)" if summary.refused else ""
    print(
        f"replayed {summary.events} day events ({summary.rows} rows) into {summary.streams} streams "
        f"in {elapsed:.2f}s ({_processes(jobs)}): {summary.applied} applied, "
        f"{summary.already_applied} already applied, "
        f"{summary.after_until} after --until, {len(summary.rejects)} rejected{refused} "
        f"-> {args.out / 'decisions.csv'}, checkpoints in {store.folder}"
    )
    if summary.interrupted:
        print("sequencer: interrupted while the checkpoints were being moved into place; the replay "
              "had finished, so all of them were written", file=sys.stderr)
        return 130
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
