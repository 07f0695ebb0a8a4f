"""Which configuration runs and where its state lives, read without pydantic.

The rules of the three location variables (``SEQUENCER_CONFIG_NAME``,
``SEQUENCER_CONFIG_FILE``, ``SEQUENCER_STATE_DIR``) are written here once:
`StateSettings` validates its three fields with these functions, and
`StateLocation.from_env` applies them directly. A command that needs only
these three (``sequencer replay``) reads them through `StateLocation` and so
does not pay for importing pydantic-settings (on main's replay, 0.14-0.16 s
of CPU and 0.4-0.5 s of wall time on the loaded 2-core machine,
docs/benchmarks.md)::

    >>> StateLocation.from_env({"SEQUENCER_CONFIG_NAME": " fast "}, state_dir=Path("st"))
    StateLocation(config_name='fast', config_file=None, state_dir=PosixPath('st'))

Standard library only; errors are the same `SettingsError` with the same
words as the full `Settings` gives.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from sequencer.domain.errors import SequencerError

__all__ = ["CONFIG_NAME", "CONFIG_FILE", "STATE_DIR", "SettingsError", "StateLocation", "given"]


class SettingsError(SequencerError, ValueError):
    """A setting has a bad value; the message starts with the variable's name.

    ``variable`` is the environment variable (e.g. ``SEQUENCER_PARTITIONS``),
    ``field`` the `Settings` field it feeds.
    """

    def __init__(self, variable: str, field_name: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.field = field_name
        self.problem = problem


def given(value: Any) -> Any:
    """*value* as a setting takes it: surrounding spaces are no part of any
    value, and a blank one means "not set" (None)."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


class Variable(NamedTuple):
    """One location setting: its variable, its field, its default, and its parser
    (text or value -> value; raises ValueError with the message's words)."""

    name: str
    field: str
    default: Any

    def parse(self, value: Any) -> Any:
        return _PARSERS[self.field](value)


#: A configuration name becomes a directory name and part of the Faust app id
#: (and so of consumer group and changelog topic names).
CONFIG_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
CONFIG_NAME_EXPECTED = "letters, digits, '_' or '-', at most 64 (it becomes a folder and topic name)"


def parse_config_name(value: Any) -> str:
    if not isinstance(value, str) or not CONFIG_NAME_PATTERN.fullmatch(value):
        raise ValueError(f"must be {CONFIG_NAME_EXPECTED}, got {value!r}")
    return value


def named_config(config_name: str | None, config_file: Any) -> str | None:
    """The configuration name options give: the name, else the config file's stem, else None
    (the environment or the default decides)."""
    if config_name:
        return config_name
    return None if config_file is None else Path(config_file).stem


def parse_path(value: Any) -> Path:
    """A path (text or `Path`), with ``~`` expanded."""
    if isinstance(value, str):
        value = Path(value)
    if not isinstance(value, Path):
        raise ValueError(f"must be a path, got {value!r}")
    try:
        return value.expanduser()
    except RuntimeError:  # "~user" of no such user, or no home directory: a bad value, no traceback
        raise ValueError(f"must be a path whose '~' names a known user's home, got {str(value)!r}") from None


_PARSERS = {"config_name": parse_config_name, "config_file": parse_path, "state_dir": parse_path}

CONFIG_NAME = Variable("SEQUENCER_CONFIG_NAME", "config_name", "default")
CONFIG_FILE = Variable("SEQUENCER_CONFIG_FILE", "config_file", None)
STATE_DIR = Variable("SEQUENCER_STATE_DIR", "state_dir", Path("data/sequencer_runs/state"))


class StateLocation(NamedTuple):
    """The configuration name and file and the state folder, as `Settings` would read them."""

    config_name: str
    config_file: Path | None
    state_dir: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "StateLocation":
        """Like `Settings.from_env` for these three fields: *overrides* that are
        not None win over *environ* (default ``os.environ``); unset or blank
        takes the default; a bad value raises `SettingsError` naming the variable."""
        environ = os.environ if environ is None else environ
        values = []
        for variable in (CONFIG_NAME, CONFIG_FILE, STATE_DIR):
            override = overrides.pop(variable.field, None)
            value = given(override if override is not None else environ.get(variable.name))
            if value is None:
                values.append(variable.default)
                continue
            try:
                values.append(variable.parse(value))
            except ValueError as error:
                raise SettingsError(variable.name, variable.field, str(error)) from None
        if overrides:
            raise TypeError(f"unknown setting(s): {', '.join(sorted(overrides))}")
        return cls(*values)
