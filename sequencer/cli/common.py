"""Arguments several subcommands share, and the config/store they select."""

from __future__ import annotations

import argparse
from pathlib import Path

from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder
from sequencer.adapters.files.config_file import load_config
from ..domain import SequencerConfig

DEFAULT_STATE_DIR = Path("data/sequencer_runs/state")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="JSON or TOML file with the keys of SPEC 2 (default: built-in defaults)")
    parser.add_argument("--config-name", default=None, metavar="NAME",
                        help="named configuration: its own checkpoint folder, app id and tables "
                             "(default: the config file's stem, or 'default')")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help=f"checkpoint root (default: $SEQUENCER_STATE_DIR or {DEFAULT_STATE_DIR})")


def add_rules_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", type=Path, default=None, metavar="FILE",
                        help="trade rules for the performance report (JSON or TOML, SPEC 8.2 keys at "
                             "top level; default: the config file's `rules` table)")


def config_name_of(args: argparse.Namespace) -> str:
    if args.config_name:
        return args.config_name
    return "default" if args.config is None else Path(args.config).stem


def selected_config(args: argparse.Namespace) -> SequencerConfig:
    return load_config(args.config)


def selected_store(args: argparse.Namespace, config: SequencerConfig) -> CheckpointStore:
    root = args.state_dir if args.state_dir is not None else _env_state_dir()
    return CheckpointStore(checkpoint_folder(root, config_name_of(args)), config)


def _env_state_dir() -> Path:
    from ..settings import Settings

    return Settings.from_env().state_dir
