"""Runtime settings: the one place the process environment is read.

Everything a worker, the streamer or the UI needs from outside (where Kafka is,
how to authenticate, topic names, where checkpoints live, the web port) is a
field of the frozen `Settings`. `Settings.from_env` reads the environment once;
command-line values win over it; the rest of the code receives a `Settings`
and never looks at ``os.environ``::

    >>> s = Settings.from_env({"SEQUENCER_PARTITIONS": "8"}, web_port=7000)
    >>> s.partitions, s.web_port, s.app_id
    (8, 7000, 'sequencer-default')

Rules:

- An unset variable, or one set to the empty string (what ``docker compose``
  passes for ``${VAR:-}``), takes the default. Surrounding spaces are ignored.
- An override (a keyword argument of `from_env`, normally a CLI option) that is
  not None wins over the environment. It may be a string, parsed exactly like
  the variable, or a value of the field's type.
- Every bad value raises `SettingsError` (a ``ValueError``) whose message starts
  with the variable's name, so the operator knows what to fix. Direct
  construction (``Settings(partitions=0)``) and ``dataclasses.replace`` are
  validated the same way.
- Secrets (``sasl_password``, ``api_token``) are left out of ``repr``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sequencer.domain.errors import SequencerError

__all__ = [
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "Settings",
    "SettingsError",
]

#: Values of KAFKA_SECURITY_PROTOCOL (Kafka's own names).
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: Values of KAFKA_SASL_MECHANISM: the username/password mechanisms that both
#: aiokafka and Faust support.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

#: A configuration name becomes a directory name and part of the Faust app id
#: (and so of consumer group and changelog topic names).
_CONFIG_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: Kafka's rule for topic names (legal characters, at most 249 of them).
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


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


# --------------------------------------------------------------------------
# parsers: str -> value, raise ValueError with a short problem text


def _parse_str(raw: str) -> str:
    return raw


def _parse_int(raw: str) -> int:
    try:
        return int(raw, 10)
    except ValueError:
        raise ValueError(f"expected an integer, got {raw!r}") from None


def _parse_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    return value


def _parse_path(raw: str) -> Path:
    return Path(raw).expanduser()


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _parse_upper(raw: str) -> str:
    return raw.upper()


def _env(variable: str, parse: Callable[[str], Any]) -> dict[str, Any]:
    """Field metadata: the environment variable and its parser."""
    return {"env": variable, "parse": parse}


def _normalize_bootstrap(value: str) -> str:
    """``"kafka://a:9092, b:9093"`` -> ``"a:9092,b:9093"``; raise on a bad entry."""
    entries = []
    for part in value.split(","):
        entry = part.strip()
        if entry.startswith("kafka://"):
            entry = entry[len("kafka://") :]
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"expected host:port[,host:port...], got entry {part.strip()!r}")
        entries.append(entry)
    return ",".join(entries)


# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Typed runtime settings of a Sequencer process (see module docstring).

    Each field's environment variable is in its metadata (``env``);
    `Settings.env_var` looks it up.
    """

    # --- Kafka connection ---------------------------------------------------
    bootstrap_servers: str = field(
        default="127.0.0.1:9092", metadata=_env("KAFKA_BOOTSTRAP_SERVERS", _parse_str)
    )
    security_protocol: str = field(
        default="PLAINTEXT", metadata=_env("KAFKA_SECURITY_PROTOCOL", _parse_upper)
    )
    sasl_mechanism: str = field(
        default="PLAIN", metadata=_env("KAFKA_SASL_MECHANISM", _parse_upper)
    )
    sasl_username: str | None = field(
        default=None, metadata=_env("KAFKA_SASL_USERNAME", _parse_str)
    )
    sasl_password: str | None = field(
        default=None,
        repr=False,
        metadata=_env("KAFKA_SASL_PASSWORD", _parse_str),
    )
    ssl_cafile: Path | None = field(
        default=None, metadata=_env("KAFKA_SSL_CAFILE", _parse_path)
    )
    ssl_certfile: Path | None = field(
        default=None, metadata=_env("KAFKA_SSL_CERTFILE", _parse_path)
    )
    ssl_keyfile: Path | None = field(
        default=None, metadata=_env("KAFKA_SSL_KEYFILE", _parse_path)
    )

    # --- which configuration, where its state lives ---------------------------
    config_name: str = field(
        default="default", metadata=_env("SEQUENCER_CONFIG_NAME", _parse_str)
    )
    config_file: Path | None = field(
        default=None, metadata=_env("SEQUENCER_CONFIG_FILE", _parse_path)
    )
    state_dir: Path = field(
        default=Path("data/sequencer_runs/state"),
        metadata=_env("SEQUENCER_STATE_DIR", _parse_path),
    )

    # --- topics ---------------------------------------------------------------
    topic_events: str = field(
        default="sequencer.day-events", metadata=_env("SEQUENCER_TOPIC_EVENTS", _parse_str)
    )
    topic_decisions: str = field(
        default="sequencer.decisions", metadata=_env("SEQUENCER_TOPIC_DECISIONS", _parse_str)
    )
    topic_dead_letters: str = field(
        default="sequencer.dead-letters",
        metadata=_env("SEQUENCER_TOPIC_DEAD_LETTERS", _parse_str),
    )
    #: Partitions of the three topics (and so of Faust's changelogs): the most
    #: workers that can share the load.
    partitions: int = field(default=4, metadata=_env("SEQUENCER_PARTITIONS", _parse_int))
    #: Replication factor of topics the app creates; 1 suits a single broker.
    replication: int = field(default=1, metadata=_env("SEQUENCER_REPLICATION", _parse_int))

    # --- checkpoints ------------------------------------------------------------
    #: A checkpoint is written after this many applied events or this many
    #: seconds, whichever comes first.
    checkpoint_every_events: int = field(
        default=5000, metadata=_env("SEQUENCER_CHECKPOINT_EVERY_EVENTS", _parse_int)
    )
    checkpoint_every_seconds: float = field(
        default=30.0, metadata=_env("SEQUENCER_CHECKPOINT_EVERY_SECONDS", _parse_float)
    )

    # --- web (lag endpoint, API) --------------------------------------------------
    web_host: str = field(default="127.0.0.1", metadata=_env("SEQUENCER_WEB_HOST", _parse_str))
    web_port: int = field(default=6066, metadata=_env("SEQUENCER_WEB_PORT", _parse_int))
    api_token: str | None = field(
        default=None,
        repr=False,
        metadata=_env("SEQUENCER_API_TOKEN", _parse_str),
    )

    # --- limits -------------------------------------------------------------------
    #: Larger events are dead-lettered undecoded (guards memory and msgpack).
    max_event_bytes: int = field(
        default=65536, metadata=_env("SEQUENCER_MAX_EVENT_BYTES", _parse_int)
    )
    #: A dead letter carries at most this many bytes of the original value
    #: (with its full length and sha256), so it always fits the broker's limit.
    dead_letter_value_bytes: int = field(
        default=16384, metadata=_env("SEQUENCER_DEAD_LETTER_VALUE_BYTES", _parse_int)
    )
    #: Send each changelog record in a batch of its own (flush after each).
    #: A broker that reports the high watermark as "base offset of the last
    #: batch + 1" (Tansu does) would otherwise end Faust's recovery early and
    #: restore stale states. Costs one round trip per changed stream per batch;
    #: on Apache Kafka it can be turned off.
    #: Hand messages from the consumer to the stream without Faust's per-message
    #: task race (sequencer/adapters/faust/consumer.py): about 2.5x the rate. Turn off to
    #: run Faust's own consumer unchanged.
    fast_drain: bool = field(default=True, metadata=_env("SEQUENCER_FAST_DRAIN", _parse_bool))
    changelog_single_record_batches: bool = field(
        default=True, metadata=_env("SEQUENCER_CHANGELOG_SINGLE_RECORD_BATCHES", _parse_bool)
    )

    # --- consumer group timing --------------------------------------------------
    #: Seconds without a heartbeat before the group coordinator declares a worker
    #: dead and hands its partitions to the others. Short on purpose: a crashed
    #: or killed worker's streams resume elsewhere within seconds (Faust's own
    #: default is 60 s). 6 s is the smallest value a broker accepts by default
    #: (``group.min.session.timeout.ms`` = 6000).
    session_timeout_s: float = field(
        default=6.0, metadata=_env("SEQUENCER_SESSION_TIMEOUT", _parse_float)
    )
    #: Seconds between heartbeats. Must be below the session timeout; Kafka
    #: advises at most a third of it so that two lost heartbeats are tolerated.
    #: A short interval also means a rebalance is noticed (and rejoined) fast.
    heartbeat_s: float = field(
        default=1.0, metadata=_env("SEQUENCER_HEARTBEAT_INTERVAL", _parse_float)
    )

    # ------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        self._coerce_and_validate()

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Build settings from *environ* (default ``os.environ``) and *overrides*.

        *overrides* are field names (``partitions=8``, ``web_port="7000"``);
        those that are None are ignored, the others win over the environment.
        An unknown name is a programming error (``TypeError``).
        Raises `SettingsError` naming the variable for any bad value.
        """
        env = os.environ if environ is None else environ
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        for name, f in fields.items():
            variable = f.metadata["env"]
            override = overrides.get(name)
            if override is not None:
                raw: Any = override
            else:
                raw = env.get(variable)
                if raw is None or not raw.strip():
                    continue  # the default
            if isinstance(raw, str):
                raw = raw.strip()
                try:
                    values[name] = f.metadata["parse"](raw) if raw else None
                except ValueError as exc:
                    raise SettingsError(variable, name, str(exc)) from None
            else:
                values[name] = raw
        return cls(**values)

    @classmethod
    def env_var(cls, field_name: str) -> str:
        """The environment variable that feeds *field_name*."""
        for f in dataclasses.fields(cls):
            if f.name == field_name:
                return str(f.metadata["env"])
        raise KeyError(field_name)

    # --- derived values -------------------------------------------------------------

    @property
    def app_id(self) -> str:
        """Faust app id (also the consumer group): one per configuration."""
        return f"sequencer-{self.config_name}"

    @property
    def checkpoint_dir(self) -> Path:
        """Where checkpoint files go (SPEC 7): a named config gets a subfolder."""
        if self.config_name == "default":
            return self.state_dir
        return self.state_dir / self.config_name

    @property
    def faust_datadir(self) -> Path:
        """Faust's own working folder (table metadata), kept beside the checkpoints.

        Faust's default is ``<app id>-data`` in the current directory, which
        litters wherever the worker happens to be started. The leading dot keeps
        it apart from configuration folders, whose names cannot start with one.
        """
        return self.state_dir / ".faust" / self.app_id

    @property
    def bootstrap_list(self) -> list[str]:
        """``bootstrap_servers`` as a list of ``host:port``."""
        return self.bootstrap_servers.split(",")

    @property
    def broker_urls(self) -> list[str]:
        """``bootstrap_servers`` as Faust broker URLs (``kafka://host:port``)."""
        return [f"kafka://{entry}" for entry in self.bootstrap_list]

    @property
    def uses_ssl(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    # --- security -----------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context for SSL / SASL_SSL, else None.

        Verifies the broker against ``ssl_cafile`` (or the system CAs when
        unset) and presents ``ssl_certfile``/``ssl_keyfile`` as a client
        certificate when set. A file that is missing or unreadable raises
        `SettingsError` naming its variable.
        """
        if not self.uses_ssl:
            return None
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                self._fail(name, f"no such file: {str(path)!r}")
        try:
            context = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH,
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
            )
        except (ssl.SSLError, OSError) as exc:
            self._fail("ssl_cafile", f"cannot load CA file {str(self.ssl_cafile)!r}: {exc}")
        if self.ssl_certfile is not None:
            try:
                context.load_cert_chain(
                    str(self.ssl_certfile),
                    str(self.ssl_keyfile) if self.ssl_keyfile else None,
                )
            except (ssl.SSLError, OSError) as exc:
                self._fail(
                    "ssl_certfile",
                    f"cannot load client certificate {str(self.ssl_certfile)!r}"
                    f" (key {str(self.ssl_keyfile)!r}): {exc}",
                )
        return context

    def aiokafka_security_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer``/admin.

        Always has ``security_protocol`` and ``ssl_context``; SASL protocols
        add ``sasl_mechanism``, ``sasl_plain_username`` and
        ``sasl_plain_password``.
        """
        kwargs: dict[str, Any] = {
            "security_protocol": self.security_protocol,
            "ssl_context": self.ssl_context(),
        }
        if self.uses_sasl:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return kwargs

    def faust_broker_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``faust.App`` that carry the same security.

        ``{}`` for PLAINTEXT, else ``{"broker_credentials": ...}`` holding a
        ``faust.SSLCredentials`` or ``faust.SASLCredentials`` (with the TLS
        context for SASL_SSL). Faust is imported here, not at module import.
        """
        if self.security_protocol == "PLAINTEXT":
            return {}
        import faust  # lazily: settings must load without Faust's import cost

        credentials: Any
        if self.security_protocol == "SSL":
            credentials = faust.SSLCredentials(self.ssl_context())
        else:
            credentials = faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password,
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context(),  # None for SASL_PLAINTEXT
            )
        return {"broker_credentials": credentials}

    # --- validation --------------------------------------------------------------------

    def _fail(self, name: str, problem: str) -> None:
        raise SettingsError(self.env_var(name), name, problem)

    def _coerce_and_validate(self) -> None:
        """Coerce values given as other types (int for float, str for Path), then
        check every rule. Runs for every construction, so a `Settings` that
        exists is valid."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str):
                # strings are parsed as the variable would be (idempotent for
                # values from_env already parsed); blank means "not set"
                text = value.strip()
                try:
                    value = f.metadata["parse"](text) if text else None
                except ValueError as exc:
                    self._fail(f.name, str(exc))
                object.__setattr__(self, f.name, value)
            elif isinstance(value, os.PathLike) and f.metadata["parse"] is _parse_path:
                object.__setattr__(self, f.name, Path(value))

        def need(name: str, kind: type | tuple[type, ...], label: str) -> Any:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, kind):
                self._fail(name, f"expected {label}, got {value!r}")
            return value

        for name in ("partitions", "replication", "checkpoint_every_events",
                     "web_port", "max_event_bytes", "dead_letter_value_bytes"):
            if need(name, int, "an integer") < 1:
                self._fail(name, f"must be >= 1, got {getattr(self, name)}")
        if self.web_port > 65535:
            self._fail("web_port", f"must be a TCP port (1-65535), got {self.web_port}")
        for name in ("checkpoint_every_seconds", "session_timeout_s", "heartbeat_s"):
            value = float(need(name, (int, float), "a number"))
            if not math.isfinite(value) or value <= 0:
                self._fail(name, f"must be a finite number > 0, got {value}")
            object.__setattr__(self, name, value)
        for name in ("fast_drain", "changelog_single_record_batches"):
            if not isinstance(getattr(self, name), bool):
                self._fail(name, f"expected true or false, got {getattr(self, name)!r}")
        if self.heartbeat_s >= self.session_timeout_s:
            self._fail(
                "heartbeat_s",
                f"must be below {self.env_var('session_timeout_s')}"
                f" ({self.session_timeout_s}), got {self.heartbeat_s}",
            )

        for name in ("bootstrap_servers", "web_host", "config_name", "topic_events",
                     "topic_decisions", "topic_dead_letters", "security_protocol",
                     "sasl_mechanism"):
            if getattr(self, name) is None:
                self._fail(name, "must not be empty")
            need(name, str, "a string")
        try:
            object.__setattr__(
                self, "bootstrap_servers", _normalize_bootstrap(self.bootstrap_servers)
            )
        except ValueError as exc:
            self._fail("bootstrap_servers", str(exc))
        if not _CONFIG_NAME_RE.fullmatch(self.config_name):
            self._fail(
                "config_name",
                f"must match {_CONFIG_NAME_RE.pattern} (it becomes a folder and"
                f" topic name), got {self.config_name!r}",
            )
        topics = ("topic_events", "topic_decisions", "topic_dead_letters")
        for name in topics:
            if not _TOPIC_RE.fullmatch(getattr(self, name)):
                self._fail(
                    name,
                    f"not a Kafka topic name (letters, digits, '.', '_', '-';"
                    f" at most 249), got {getattr(self, name)!r}",
                )
        for i, name in enumerate(topics):
            for other in topics[:i]:
                if getattr(self, name) == getattr(self, other):
                    self._fail(
                        name,
                        f"must differ from {self.env_var(other)}"
                        f" (both are {getattr(self, name)!r})",
                    )

        for name in ("state_dir",):
            need(name, Path, "a path")
        for name in ("config_file", "ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name) is not None:
                need(name, Path, "a path")
        for name in ("sasl_username", "sasl_password", "api_token"):
            if getattr(self, name) is not None:
                need(name, str, "a string")

        if self.security_protocol not in SECURITY_PROTOCOLS:
            self._fail(
                "security_protocol",
                f"must be one of {', '.join(SECURITY_PROTOCOLS)},"
                f" got {self.security_protocol!r}",
            )
        if self.sasl_mechanism not in SASL_MECHANISMS:
            self._fail(
                "sasl_mechanism",
                f"must be one of {', '.join(SASL_MECHANISMS)}, got {self.sasl_mechanism!r}",
            )
        if self.uses_sasl:
            for name in ("sasl_username", "sasl_password"):
                if getattr(self, name) is None:
                    self._fail(
                        name,
                        f"required when {self.env_var('security_protocol')}"
                        f" is {self.security_protocol}",
                    )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            self._fail(
                "ssl_certfile",
                f"required when {self.env_var('ssl_keyfile')} is set"
                " (a key alone is no client certificate)",
            )
