"""What every settings section shares: reading the environment, the error type.

A section is a frozen pydantic-settings model whose fields each name their
environment variable (``validation_alias``). pydantic does the parsing and the
checks; this module turns its `ValidationError` into one `SettingsError` that
starts with the variable's name, says what was expected and shows the value::

    SEQUENCER_PARTITIONS: must be an integer >= 1, got 'four'

Rules (the same for every section and for the composed `Settings`):

- ``from_env`` reads the environment once; an unset variable, or one set to
  the empty string (what ``docker compose`` passes for ``${VAR:-}``), takes the
  default. Surrounding spaces are ignored.
- An override (keyword argument of ``from_env``, normally a CLI option) that is
  not None wins over the environment; text is parsed exactly like the variable.
- Direct construction (``Settings(partitions=0)``) and `SettingsSection.replace`
  are validated the same way, and read no environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple, Self

from pydantic import BeforeValidator, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from .location import SettingsError, given

__all__ = ["Expected", "SettingsError", "SettingsSection", "refuse_bool"]


class Expected(NamedTuple):
    """Field metadata: what a valid value is, in the words of the error message."""

    text: str


def _no_bool(value: Any) -> Any:
    # pydantic takes True for 1; a switch is no count
    if isinstance(value, bool):
        raise ValueError
    return value


#: For numeric fields: refuse booleans (the error then says what is expected).
refuse_bool = BeforeValidator(_no_bool)


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead
    of ``os.environ`` (tests and the UI pass their own)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty,
                              self.env_parse_none_str)


class SettingsSection(BaseSettings):
    """Base of the settings sections (see the module docstring)."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        case_sensitive=True,
        env_ignore_empty=True,
        populate_by_name=True,
        # Each section's validator is built when the section is first used, not
        # at import: most processes only ever validate the composed Settings.
        defer_build=True,
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _settings_error(type(self), exc) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):  # type: ignore[no-untyped-def]
        # Only the values given: the environment is read by from_env, and only there.
        return (init_settings,)

    @model_validator(mode="before")
    @classmethod
    def _strip_and_drop_blanks(cls, values: Any) -> Any:
        # surrounding spaces are no part of any value; a blank one means "not set"
        if not isinstance(values, dict):
            return values
        # (location.given is the rule; only text can be blank, an explicit None stays)
        taken = {k: given(v) if isinstance(v, str) else v for k, v in values.items()}
        return {k: v for k, v in taken.items() if v is not None or not isinstance(values[k], str)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """Build settings from *environ* (default ``os.environ``) and *overrides*.

        *overrides* are field names (``partitions=8``, ``web_port="7000"``);
        those that are None are ignored, the others win over the environment.
        An unknown name is a programming error (``TypeError``).
        Raises `SettingsError` naming the variable for any bad value.
        """
        unknown = sorted(set(overrides) - set(cls.model_fields))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        by_variable = {cls.env_var(name): name for name in cls.model_fields}
        source = _MappingEnvSource(cls, os.environ if environ is None else environ)
        values = {by_variable.get(key, key): value for key, value in source().items()}
        values.update((name, value) for name, value in overrides.items() if value is not None)
        return cls(**values)

    @classmethod
    def env_var(cls, field_name: str) -> str:
        """The environment variable that feeds *field_name*."""
        return str(cls.model_fields[field_name].validation_alias)

    def replace(self, **changes: Any) -> Self:
        """A copy with *changes* (field names), validated like a new instance."""
        return type(self)(**{**self.model_dump(), **changes})

    @classmethod
    def fail(cls, field_name: str, problem: str) -> SettingsError:
        """The error for *field_name* (raise it)."""
        return SettingsError(cls.env_var(field_name), field_name, problem)


def _settings_error(cls: type[SettingsSection], exc: ValidationError) -> SettingsError:
    """The first problem of *exc*, as a `SettingsError` naming its variable."""
    error = exc.errors()[0]
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, SettingsError):  # raised by a section's own check
        return cause
    by_variable = {cls.env_var(name): name for name in cls.model_fields}
    key = str(error["loc"][0]) if error["loc"] else ""
    name = by_variable.get(key, key)
    if name not in cls.model_fields:  # an unknown field given to the constructor
        raise TypeError(f"unknown setting: {key}") from None
    if isinstance(cause, ValueError) and str(cause):  # a validator's own words
        problem = str(cause)
    else:
        expected = next((m.text for m in cls.model_fields[name].metadata if isinstance(m, Expected)),
                        None)
        what = f"must be {expected}" if expected else error["msg"][0].lower() + error["msg"][1:]
        problem = f"{what}, got {error['input']!r}"
    return SettingsError(cls.env_var(name), name, problem)
