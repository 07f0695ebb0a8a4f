"""Entry point of the ``sequencer`` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..domain import SequencerError

#: Subcommand modules, each with ``register(subparsers)``; imported lazily so
#: ``sequencer replay`` never pays for Faust or aiokafka.
SUBCOMMANDS = ("replay_cmd", "state_cmd", "worker_cmd", "broker_cmd", "run_cmd", "lag_cmd", "ui_cmd", "rebuild_cmd", "verify_cmd", "report_cmd", "sweep_cmd")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sequencer", description="Event-sourced trading sequencer.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__package__}.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args) or 0
    except SequencerError as error:
        print(f"sequencer: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
