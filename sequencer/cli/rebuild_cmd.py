"""``sequencer rebuild``: stop-the-world rebuild of stream states from the event log."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .common import add_config_arguments, selected
from ..adapters.progress import progress_bar


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", default=None, metavar="B",
                        help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS)")
    add_config_arguments(parser)
    parser.add_argument("--streams", nargs="+", default=None, metavar="S",
                        help="only these streams (default: every stream on the log, in the table "
                             "or with a checkpoint)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rebuild", help="rebuild stream states from the event log (stop the worker first)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Rebuild stream states by folding the event topic with the worker's own code.\n\n"
            "STOP THE WORKER FIRST: this is a stop-the-world operation. It replaces the chosen\n"
            "streams' values in the worker's table by writing to its changelog topics, and\n"
            "rewrites their checkpoint files; a running worker would overwrite them. The\n"
            "command refuses to run while the worker's consumer group lists members (--force\n"
            "skips that check: Tansu, the dev broker, keeps stopped workers listed).\n\n"
            "  --from log         read the event topic from the earliest offset\n"
            "  --from checkpoint  start from the checkpoints and replay only the log's tail\n"
            "                     (same final state as --from log)\n"
            "  --as-of DATE       (with --from log) the state as of that day, written to\n"
            "                     STATE_DIR[/CONFIG]/as-of-DATE/; the table and the live\n"
            "                     checkpoints are left untouched (the worker may run)"))
    parser.add_argument("--from", dest="source", choices=("log", "checkpoint"), required=True)
    parser.add_argument("--as-of", default=None, metavar="DATE", help="ISO date; events after it are not applied")
    parser.add_argument("--force", action="store_true",
                        help="skip the check for active members of the worker's consumer group")
    add_broker_arguments(parser)
    parser.set_defaults(func=run)


def settings_and_store(args: argparse.Namespace):
    return selected(args, bootstrap_servers=args.bootstrap)


def run(args: argparse.Namespace) -> int:
    from ..domain.events import parse_iso_date
    from sequencer.adapters.kafka.rebuild import rebuild

    settings, config, store = settings_and_store(args)
    as_of = parse_iso_date(args.as_of, "--as-of") if args.as_of else None
    with progress_bar(None, f"rebuild from {args.source}") as bar:
        def total(n: int) -> None:
            bar.total = n
            bar.refresh()
        result = asyncio.run(rebuild(settings, config, store, source=args.source, as_of=as_of,
                                     streams=args.streams, on_total=total, on_progress=bar.update,
                                     check_group=not args.force))
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    reasons = ", ".join(f"{n} {k}" for k, n in sorted(result.dead_letters.items())) or "none"
    print(f"read {result.records_read} records of {settings.topic_events} "
          f"(partition: from..to {', '.join(f'{p}: {result.start_offsets[p]}..{result.end_offsets[p]}' for p in sorted(result.end_offsets))}) "
          f"in {result.seconds:.2f}s: {result.decisions} events applied to the chosen streams, dead letters: {reasons}"
          + (f", {result.after_as_of} after {as_of}" if as_of else ""))
    for stream in result.streams:
        state = result.states.get(stream)
        if state is None:
            print(f"  {stream:8} no events: table value and checkpoint deleted" if not as_of
                  else f"  {stream:8} no events up to {as_of}")
        else:
            print(f"  {stream:8} last {state.last_processed_date}  events {state.events_applied:>6}  "
                  f"next {state.current_time}  target {state.current_target:g}")
    if as_of:
        print(f"state as of {as_of}: {len(result.states)} checkpoints in {result.checkpoint_folder} "
              "(table and live checkpoints untouched)")
    else:
        print(f"wrote {result.written_records} changelog records for {len(result.streams)} streams "
              f"({settings.app_id}) and checkpoints in {result.checkpoint_folder}; start the worker again")
    return 0
