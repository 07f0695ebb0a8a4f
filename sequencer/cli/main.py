"""Entry point of the ``sequencer`` command."""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import traceback

from ..domain import SequencerError

#: Subcommand modules, each with ``register(subparsers)``; imported lazily so
#: ``sequencer replay`` never pays for Faust or aiokafka.
SUBCOMMANDS = ("replay_cmd", "state_cmd", "worker_cmd", "broker_cmd", "run_cmd", "lag_cmd", "ui_cmd", "rebuild_cmd", "verify_cmd", "report_cmd", "sweep_cmd")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of ``command``'s alone (a name of
    ``SUBCOMMANDS`` without ``_cmd``): importing them all (asyncio with some)
    cost each ``sequencer replay`` about 30 ms."""
    parser = argparse.ArgumentParser(prog="sequencer", description="Event-sourced trading sequencer.")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    subparsers = parser.add_subparsers(dest="command", required=True)
    names = (f"{command}_cmd",) if f"{command}_cmd" in SUBCOMMANDS else SUBCOMMANDS
    for name in names:
        importlib.import_module(f"{__package__}.{name}").register(subparsers)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv``: its first word that is no option (the
    only option before it, ``-v``, takes no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_of(argv)).parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        # aiokafka logs every failed connection attempt at error level; the
        # commands say in one line when a broker is unreachable (-v shows them).
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return args.func(args) or 0
    except SequencerError as error:
        return _fail(str(error), 2, args.verbose)
    except OSError as error:  # a file or folder the run needs: one line naming it, no traceback
        return _fail(describe_os_error(error), 1, args.verbose)
    except KeyboardInterrupt:
        return 130


def _fail(message: str, code: int, verbose: int) -> int:
    """One line on stderr (and the traceback with ``-v``); the exit code."""
    if verbose:
        traceback.print_exc()
    print(f"sequencer: error: {message}" + ("" if verbose else " (-v for the traceback)"), file=sys.stderr)
    return code


def describe_os_error(error: OSError) -> str:
    """``PATH: what is wrong`` for the file errors a run meets (ENOSPC, a folder for a file, ...)."""
    what = error.strerror or str(error) or type(error).__name__
    hint = {
        errno.ENOSPC: "the disk is full",
        errno.EISDIR: "a folder is where a file should be",
        errno.ENOTDIR: "a file is where a folder should be",
        errno.EEXIST: "a file is where a folder should be",
    }.get(error.errno)
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    text = what if hint is None else f"{what} ({hint})"
    return f"{' -> '.join(paths)}: {text}" if paths else text


if __name__ == "__main__":
    sys.exit(main())
