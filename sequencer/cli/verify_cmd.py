"""``sequencer verify``: rebuild in memory from the log and diff against the table and checkpoints."""

from __future__ import annotations

import argparse
import asyncio

from ..adapters.progress import progress_bar
from .rebuild_cmd import add_broker_arguments, settings_and_store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify", help="compare the live table and the checkpoints with a rebuild from the log",
        description="Fold the event topic in memory (nothing is written) and compare every stream's "
                    "state with the worker's table (last value per key of its changelog) and with its "
                    "checkpoint file. The table must match the end of the log (let the worker catch up "
                    "first); a checkpoint must match the log at its own source_offsets. Prints one line "
                    "per drifting field (stream, where, field, expected, found) and one per checkpoint behind the "
                    "log. Exit status 1 on drift; 3 when nothing drifts but a checkpoint is behind the "
                    "log (a running worker writes its checkpoints from time to time: stop it, or POST "
                    "/checkpoint, first); 0 with 'no drift' otherwise.")
    add_broker_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from sequencer.adapters.kafka.verify import verify

    settings, config, store = settings_and_store(args)
    with progress_bar(None, "verify") as bar:
        def total(n: int) -> None:
            bar.total = n
            bar.refresh()
        result = asyncio.run(verify(settings, config, store, streams=args.streams,
                                    on_total=total, on_progress=bar.update))
    for note in result.notes:
        print(f"note: {note}")
    for drift in result.drift:
        print(f"DRIFT {drift.line()}")
    for behind in result.behind:
        print(f"BEHIND {behind.line()}")
    if result.drift:
        streams = sorted({d.stream for d in result.drift})
        print(f"drift in {len(streams)} of {len(result.streams)} streams ({', '.join(streams)}); "
              f"{len(result.drift)} differences")
        return 1
    if result.behind:
        streams = sorted(b.stream for b in result.behind)
        print(f"no drift, but {len(streams)} of {len(result.streams)} checkpoints are behind the log "
              f"({', '.join(streams)}; {sum(b.events for b in result.behind)} events in all); once every "
              "worker has stopped, each checkpoint should match the end of the log")
        return 3
    print(f"no drift: {len(result.streams)} streams match the log ({result.records_read} records of "
          f"{settings.topic_events}) in the table and the checkpoints [{result.seconds:.2f}s]")
    return 0
