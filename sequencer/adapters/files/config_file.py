"""Reading a ``SequencerConfig`` (keys of SPEC 2) and ``TradeRules`` (SPEC 8.2)
from JSON or TOML files.

A config file may carry a ``rules`` table; a ``--rules`` file holds the same
keys at its top level. Rules never enter the ``SequencerConfig`` (nor its
``config_id``): they are read apart, by ``load_rules``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from sequencer.app.distinct_keys import RepeatedKey, distinct_pairs
from sequencer.domain import NO_RULES, ConfigError, SequencerConfig, TradeRules

#: The config file's table of trade rules (SPEC 8.2).
RULES_TABLE = "rules"


def read_table(path: Path, what: str = "config file") -> dict[str, Any]:
    """A JSON or TOML file (by its suffix; JSON otherwise) as a table of settings."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is not content
    except OSError as error:
        raise ConfigError(f"{what} {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{what} {path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            # TOML refuses a key given twice; json.loads keeps the last, silently.
            data = json.loads(text, object_pairs_hook=distinct_pairs)
    except RepeatedKey as repeated:
        raise ConfigError(f"{what} {path}: {repeated}") from None
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{what} {path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path}: expected a table of settings")
    return data


def load_config(path: Path | None) -> SequencerConfig:
    """The file's config, or the default one when ``path`` is None."""
    if path is None:
        return SequencerConfig()
    data = read_table(path)
    data.pop(RULES_TABLE, None)  # report only: read by load_rules
    try:
        return SequencerConfig.from_mapping(data)
    except ConfigError as error:
        raise ConfigError(f"config file {path}: {error}") from None


def load_rules(config_path: Path | None = None, rules_path: Path | None = None) -> TradeRules:
    """The trade rules of ``--rules FILE`` (keys at top level) if given, else of
    the config file's ``rules`` table, else none. A rules file replaces the
    config file's table as a whole: one place says which rules a report used."""
    if rules_path is not None:
        source, data = f"rules file {rules_path}", read_table(rules_path, "rules file")
    elif config_path is not None:
        source, data = f"config file {config_path}", read_table(config_path).get(RULES_TABLE, {})
    else:
        return NO_RULES
    try:
        return TradeRules.from_mapping(data)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
