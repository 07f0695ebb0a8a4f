"""Arguments several subcommands share, and the settings, config and store they select.

``--config``, ``--config-name`` and ``--state-dir`` are declared here only. Each
resolves the same way in every command: the option, else its variable
(``SEQUENCER_CONFIG_NAME``, ``SEQUENCER_STATE_DIR``), else the default; a
``--config FILE`` without ``--config-name`` names the configuration after the
file's stem.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder
from sequencer.adapters.files.config_file import load_config
from ..domain import SequencerConfig

from ..settings.location import STATE_DIR, StateLocation, named_config

DEFAULT_STATE_DIR: Path = STATE_DIR.default


def add_config_arguments(parser: argparse.ArgumentParser, *,
                         config_help: str = "JSON or TOML file with the keys of SPEC 2 "
                                            "(default: $SEQUENCER_CONFIG_FILE or built-in defaults)") -> None:
    parser.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    parser.add_argument("--config-name", default=None, metavar="NAME",
                        help="named configuration: its own checkpoint folder, app id and tables "
                             "(default: the config file's stem, else $SEQUENCER_CONFIG_NAME or 'default')")
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help=f"checkpoint root (default: $SEQUENCER_STATE_DIR or {DEFAULT_STATE_DIR})")


def add_rules_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", type=Path, default=None, metavar="FILE",
                        help="trade rules for the performance report (JSON or TOML, SPEC 8.2 keys at "
                             "top level; default: the config file's `rules` table)")


def config_name_of(args: argparse.Namespace) -> str | None:
    """The configuration name the command line gives (None: not given, the settings decide)."""
    return named_config(args.config_name, args.config)


def settings_of(args: argparse.Namespace, **overrides: Any):  # -> sequencer.settings.Settings
    """The settings: the environment, with the config options of *args* and *overrides* winning."""
    from ..settings import Settings  # lazily: `sequencer --help` does not load pydantic

    return Settings.from_env(config_file=args.config, config_name=config_name_of(args),
                             state_dir=args.state_dir, **overrides)


def location_of(args: argparse.Namespace) -> StateLocation:
    """The configuration name and file and the state folder alone, resolved as
    `settings_of` resolves them but without pydantic (the other settings are
    neither read nor checked: a command that uses only these starts faster)."""
    return StateLocation.from_env(config_file=args.config, config_name=config_name_of(args),
                                  state_dir=args.state_dir)


def located(args: argparse.Namespace) -> tuple[StateLocation, SequencerConfig, CheckpointStore]:
    """(location, config, store) of a command that needs no other setting (`location_of`)."""
    location = location_of(args)
    config = load_config(location.config_file)
    return location, config, CheckpointStore(checkpoint_folder(location.state_dir, location.config_name), config)


def selected(args: argparse.Namespace, **overrides: Any):
    """(settings, config, store) of a command: `settings_of`, its config file, its checkpoint folder."""
    settings = settings_of(args, **overrides)
    config = load_config(settings.config_file)
    return settings, config, CheckpointStore(checkpoint_folder(settings.state_dir, settings.config_name), config)

