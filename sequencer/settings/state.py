"""Which configuration runs and where its state lives: name, file, folders, checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field

from .base import Expected, SettingsSection, refuse_bool

__all__ = ["StateSettings"]


def _expand(path: Path | None) -> Path | None:
    return path.expanduser() if path is not None else None


class StateSettings(SettingsSection):
    #: A configuration name becomes a directory name and part of the Faust app
    #: id (and so of consumer group and changelog topic names).
    config_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$"), Expected(
        "letters, digits, '_' or '-', at most 64 (it becomes a folder and topic name)")] = Field(
        "default", validation_alias="SEQUENCER_CONFIG_NAME")
    config_file: Annotated[Path | None, AfterValidator(_expand), Expected("a path")] = Field(
        None, validation_alias="SEQUENCER_CONFIG_FILE")
    state_dir: Annotated[Path, AfterValidator(_expand), Expected("a path")] = Field(
        Path("data/sequencer_runs/state"), validation_alias="SEQUENCER_STATE_DIR")
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
