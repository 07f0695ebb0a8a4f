"""Which configuration runs and where its state lives: name, file, folders, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from .base import Expected, SettingsSection, refuse_bool
from .location import CONFIG_NAME_EXPECTED, CONFIG_FILE, CONFIG_NAME, STATE_DIR, parse_config_name, parse_path

__all__ = ["StateSettings"]


def _optional_path(path: Path | None) -> Path | None:
    return parse_path(path) if path is not None else None


class StateSettings(SettingsSection):
    # The rules of these three are location.py's (a replay reads them there,
    # without pydantic); the fields only apply them.
    config_name: Annotated[str, AfterValidator(parse_config_name), Expected(CONFIG_NAME_EXPECTED)] = Field(
        CONFIG_NAME.default, validation_alias=CONFIG_NAME.name)
    config_file: Annotated[Path | None, AfterValidator(_optional_path), Expected("a path")] = Field(
        CONFIG_FILE.default, validation_alias=CONFIG_FILE.name)
    state_dir: Annotated[Path, AfterValidator(parse_path), Expected("a path")] = Field(
        STATE_DIR.default, validation_alias=STATE_DIR.name)
    #: A checkpoint is written after this many applied events or this many
    #: seconds, whichever comes first.
    checkpoint_every_events: Annotated[int, refuse_bool, Field(ge=1), Expected("an integer >= 1")] = Field(
        5000, validation_alias="SEQUENCER_CHECKPOINT_EVERY_EVENTS")
    checkpoint_every_seconds: Annotated[
        float, refuse_bool, Field(gt=0, allow_inf_nan=False), Expected("a finite number > 0")] = Field(
        30.0, validation_alias="SEQUENCER_CHECKPOINT_EVERY_SECONDS")

    @property
    def app_id(self) -> str:
        """Faust app id (also the consumer group): one per configuration."""
        return f"sequencer-{self.config_name}"

    # Where its checkpoint files go (SPEC 7) is checkpoints.checkpoint_folder(state_dir, config_name).

    @property
    def faust_datadir(self) -> Path:
        """Faust's own working folder (table metadata), kept beside the checkpoints.

        Faust's default is ``<app id>-data`` in the current directory, which
        litters wherever the worker happens to be started. The leading dot keeps
        it apart from configuration folders, whose names cannot start with one.
        """
        return self.state_dir / ".faust" / self.app_id
