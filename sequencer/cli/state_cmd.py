"""``sequencer state list|show|clear``: inspect and manage checkpoints by hand."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from sequencer.adapters.files.checkpoints import FOLDER_IN_THE_WAY, CheckpointError, stream_of_file
from sequencer.app.clock import utc_today
from ..domain import state_to_dict
from .common import add_config_arguments, selected


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("state", help="list, show or clear checkpoints")
    verbs = parser.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="one line per stream checkpoint")
    add_config_arguments(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)
    show = verbs.add_parser("show", help="a stream's state (all streams without STREAM)")
    add_config_arguments(show)
    show.add_argument("stream", nargs="?")
    show.add_argument("--json", action="store_true", help="the state JSON of SPEC 4")
    show.set_defaults(func=run_show)
    clear = verbs.add_parser("clear", help="delete checkpoints")
    add_config_arguments(clear)
    target = clear.add_mutually_exclusive_group(required=True)
    target.add_argument("stream", nargs="?")
    target.add_argument("--all", action="store_true")
    clear.set_defaults(func=run_clear)


def _age_days(date: str | None) -> str:
    if not date:
        return "-"
    return str((utc_today() - dt.date.fromisoformat(date)).days)


def run_list(args: argparse.Namespace) -> int:
    _, _, store = selected(args)
    rows = []
    for path in store.files():
        try:
            cp = store.load_file(path)
        except CheckpointError as error:
            rows.append({"file": str(path), "error": error.problem})
            continue
        s = cp.state
        rows.append({"stream": s.stream, "last_processed_date": s.last_processed_date,
                     "age_days": _age_days(s.last_processed_date), "events_applied": s.events_applied,
                     "current_time": s.current_time, "current_target": s.current_target,
                     "saved_at": cp.saved_at, "file": str(path)})
    # A folder in a checkpoint's place: a resume refuses to start, the worker cannot save that stream.
    rows.extend({"file": str(path), "error": FOLDER_IN_THE_WAY} for path in store.folders_in_the_way())
    if args.json:
        print(json.dumps(rows, indent=2))
        return _refusals(rows, store.folder)
    if not rows:
        print(f"no checkpoints in {store.folder}")
        return 0
    print(f"{'stream':8} {'last date':10} {'age d':>6} {'events':>7} {'next':5} {'target':>8}  saved at")
    for row in rows:
        if "error" in row:
            print(f"REFUSED  {row['file']}: {row['error']}")
            continue
        print(f"{row['stream']:8} {row['last_processed_date'] or '-':10} {row['age_days']:>6} "
              f"{row['events_applied']:>7} {row['current_time']:5} {row['current_target']:>8g}  {row['saved_at'] or '-'}")
    return _refusals(rows, store.folder)


def _refusals(rows: list[dict], folder: object) -> int:
    """Exit status 2 when a file was refused: a stream the worker and --resume will not load."""
    refused = sum(1 for row in rows if "error" in row)
    if not refused:
        return 0
    print(f"sequencer: {refused} of {len(rows)} checkpoint files in {folder} were refused", file=sys.stderr)
    return 2


def run_show(args: argparse.Namespace) -> int:
    _, _, store = selected(args)
    paths = store.files()
    if args.stream:
        paths = [p for p in paths if stream_of_file(p) == args.stream]
        if not paths:
            print(f"sequencer: no checkpoint for stream {args.stream} in {store.folder}", file=sys.stderr)
            return 1
    status = 0
    for path in paths:
        try:
            cp = store.load_file(path)
        except CheckpointError as error:
            print(f"sequencer: refused {error}", file=sys.stderr)
            status = 2
            continue
        doc = state_to_dict(cp.state, saved_at=cp.saved_at)
        if args.json:
            print(json.dumps(doc, indent=2))
            continue
        s = cp.state
        print(f"{s.stream} ({s.instrument} {s.session}, config {s.config_id}), {cp.path}")
        print(f"  last processed {s.last_processed_date}  events {s.events_applied}  saved {cp.saved_at}")
        print(f"  next slot {s.current_time}  target {s.current_target:g}  no trade next: {s.no_trade_next}")
        print(f"  rolling median target {s.rolling_median_target:g}  ladder target {s.median_ladder_target:g} "
              f"(step {s.median_ladder_current_step}, {s.median_ladder_days_at_level} days at level)")
        print(f"  peaks ({len(s.rolling_median_window)}): {', '.join(f'{p:g}' for p in s.rolling_median_window)}")
        for slot, history in s.time_slot_histories.items():
            print(f"  {slot}: sum {sum(history):>3}  [{' '.join(str(x) for x in history)}]")
    return status


def run_clear(args: argparse.Namespace) -> int:
    _, _, store = selected(args)
    removed = store.clear_all() if args.all else store.clear(args.stream)
    if not removed:
        print(f"nothing to clear in {store.folder}")
        return 0 if args.all else 1
    for path in removed:
        print(f"removed {path}")
    return 0
