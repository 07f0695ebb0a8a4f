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
Secrets (``sasl_password``, ``api_token``) are left out of ``repr``. The TLS
context and the Kafka client arguments are built by
`sequencer.adapters.kafka.connection.KafkaConnection`.
"""

from __future__ import annotations

from .base import SettingsError, SettingsSection
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
    "StateSettings",
    "TopicSettings",
    "WebSettings",
    "WorkerSettings",
]


class Settings(WorkerSettings, WebSettings, StateSettings, TopicSettings, KafkaSettings):
    """Typed runtime settings of a Sequencer process: every section's fields, flat.

    (Bases in reverse so that the fields, and so the errors, come in the order above.)

    Each field's environment variable is its ``validation_alias``;
    `Settings.env_var` looks it up.
    """
