"""The composed `Settings` (imported lazily by the package, see ``__init__``)."""

from __future__ import annotations

from .kafka import KafkaSettings
from .state import StateSettings
from .topics import TopicSettings
from .web import WebSettings
from .worker import WorkerSettings

__all__ = ["Settings"]


class Settings(WorkerSettings, WebSettings, StateSettings, TopicSettings, KafkaSettings):
    """Typed runtime settings of a Sequencer process: every section's fields, flat.

    (Bases in reverse so that the fields, and so the errors, come in the order above.)

    Each field's environment variable is its ``validation_alias``;
    `Settings.env_var` looks it up.
    """
