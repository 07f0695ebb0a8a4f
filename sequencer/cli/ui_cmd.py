"""``sequencer ui``: the Streamlit dashboard (sequencer/ui/app.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import add_config_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ui", help="the Streamlit dashboard: streams, freshness, lag, per-stream detail and controls",
        description="Runs `python -m streamlit run sequencer/ui/app.py`. Reads the worker's HTTP API "
                    "when it answers, else the checkpoint files.")
    parser.add_argument("--port", type=int, default=8501, help="port of the dashboard (default 8501)")
    parser.add_argument("--address", default="127.0.0.1", help="address the dashboard binds to (default 127.0.0.1)")
    parser.add_argument("--api", default=None, metavar="URL",
                        help="worker HTTP API (default http://$SEQUENCER_WEB_HOST:$SEQUENCER_WEB_PORT)")
    add_config_arguments(parser)
    parser.add_argument("--decisions", type=Path, default=None, metavar="FILE",
                        help="decisions.csv (of `sequencer run` or `replay`) for the targets-over-time chart")
    parser.add_argument("--bootstrap", default=None,
                        help="read the lag from this broker when no worker answers")
    parser.add_argument("--sweep", type=Path, default=None, metavar="DIR",
                        help="the --out folder of `sequencer sweep` for the Sweep page (default out/sweep)")
    parser.set_defaults(func=run)


def app_arguments(args: argparse.Namespace) -> list[str]:
    """The arguments after ``--`` that sequencer/ui/app.py parses."""
    out: list[str] = []
    for name in ("api", "state_dir", "config", "config_name", "decisions", "bootstrap", "sweep"):
        value = getattr(args, name)
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    return out


def command(args: argparse.Namespace) -> list[str]:
    app = Path(__file__).resolve().parent.parent / "ui" / "app.py"
    return [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.port", str(args.port), "--server.address", args.address,
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--", *app_arguments(args)]


def run(args: argparse.Namespace) -> int:
    cmd = command(args)
    print(f"sequencer ui: http://{args.address}:{args.port}/", flush=True)
    # Become Streamlit (same pid): signals sent to `sequencer ui` reach the server
    # itself and no child is left behind when it is stopped.
    os.execv(cmd[0], cmd)
    return 0  # not reached
