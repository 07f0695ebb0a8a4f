"""Runtime settings: the one place the process environment is read.

Everything a worker, the streamer or the UI needs from outside (where Kafka is,
how to authenticate, topic names, where checkpoints live, the web port) is a
field of the frozen `Settings`, composed of one section per concern:

- `KafkaSettings` (``kafka.py``): brokers, security protocol, SASL, TLS files;
- `TopicSettings` (``topics.py``): the three topic names, partitions, replication;
- `StateSettings` (``state.py``): configuration name and file, state folder,
  checkpoint frequency;
- `WebSettings` (``web.py``): the worker's web host, port and API token;
- `WorkerSettings` (``worker.py``): record limits, delivery switches, group timing.

`Settings.from_env` reads the environment once; command-line values win over
it; the rest of the code receives a `Settings` and never looks at
``os.environ``::

    >>> s = Settings.from_env({"SEQUENCER_PARTITIONS": "8"}, web_port=7000)
    >>> s.partitions, s.web_port, s.app_id
    (8, 7000, 'sequencer-default')

Parsing and checks are pydantic-settings'; the rules (blank means default,
overrides, one `SettingsError` naming the variable) are in ``base.py``.
The three location settings (configuration name and file, state folder) have
their rules in ``location.py``, standard library only: `StateLocation` reads
just those without importing pydantic, for commands that need no more
(``sequencer replay``). Importing this package imports pydantic only when one
of the pydantic-backed names is first used.
Secrets (``sasl_password``, ``api_token``) are left out of ``repr``. The TLS
context and the Kafka client arguments are built by
`sequencer.adapters.kafka.connection.KafkaConnection`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from .location import SettingsError, StateLocation

if TYPE_CHECKING:
    from .base import SettingsSection
    from .kafka import SASL_MECHANISMS, SECURITY_PROTOCOLS, KafkaSettings
    from .state import StateSettings
    from .topics import TopicSettings
    from .web import WebSettings
    from .worker import WorkerSettings

__all__ = [
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "KafkaSettings",
    "Settings",
    "SettingsError",
    "SettingsSection",
    "StateLocation",
    "StateSettings",
    "TopicSettings",
    "WebSettings",
    "WorkerSettings",
]

#: Where each pydantic-backed name lives. They are imported on first use
#: (PEP 562), so that importing the package, or `StateLocation` from it, does
#: not import pydantic-settings (a replay needs only the state location).
_LAZY = {"SettingsSection": ".base", "SASL_MECHANISMS": ".kafka", "SECURITY_PROTOCOLS": ".kafka",
         "KafkaSettings": ".kafka", "StateSettings": ".state", "TopicSettings": ".topics",
         "WebSettings": ".web", "WorkerSettings": ".worker", "Settings": "._composed"}


def __getattr__(name: str):  # noqa: ANN202 (PEP 562)
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # once: later lookups do not come here
    return value
