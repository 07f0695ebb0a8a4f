"""Reading a ``SequencerConfig`` from a JSON or TOML file (keys of SPEC 2)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from .domain import ConfigError, SequencerConfig


def load_config(path: Path | None) -> SequencerConfig:
    """The file's config, or the default one when ``path`` is None."""
    if path is None:
        return SequencerConfig()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is not content
    except OSError as error:
        raise ConfigError(f"config file {path}: {error.strerror or error}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"config file {path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a table of settings")
    try:
        return SequencerConfig.from_mapping(data)
    except ConfigError as error:
        raise ConfigError(f"config file {path}: {error}") from None
