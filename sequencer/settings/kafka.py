"""Where Kafka is and how to authenticate to it (the ``KAFKA_*`` variables).

Only the values: the TLS context and the client arguments are built from them
once per connection by `sequencer.adapters.kafka.connection.KafkaConnection`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from .base import Expected, SettingsSection

__all__ = ["SASL_MECHANISMS", "SECURITY_PROTOCOLS", "KafkaSettings"]

#: Values of KAFKA_SECURITY_PROTOCOL (Kafka's own names).
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: Values of KAFKA_SASL_MECHANISM: the username/password mechanisms that both
#: aiokafka and Faust support.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _normalize_bootstrap(value: str) -> str:
    """``"kafka://a:9092, b:9093"`` -> ``"a:9092,b:9093"``; raise on a bad entry."""
    entries = []
    for part in value.split(","):
        entry = part.strip()
        if entry.startswith("kafka://"):
            entry = entry[len("kafka://"):]
        host, sep, port = entry.rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"expected host:port[,host:port...], got entry {part.strip()!r}")
        entries.append(entry)
    return ",".join(entries)


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _one_of(names: tuple[str, ...]) -> Expected:
    return Expected(f"one of {', '.join(names)}")


_TlsFile = Annotated[Path | None, AfterValidator(lambda p: p and p.expanduser()), Expected("a path")]


class KafkaSettings(SettingsSection):
    """The broker addresses, the security protocol, SASL credentials, TLS files."""

    bootstrap_servers: Annotated[str, AfterValidator(_normalize_bootstrap), Expected("host:port[,host:port...]")] = Field(
        "127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS")
    security_protocol: Annotated[
        Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper),
        _one_of(SECURITY_PROTOCOLS)] = Field("PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL")
    sasl_mechanism: Annotated[
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], BeforeValidator(_upper),
        _one_of(SASL_MECHANISMS)] = Field("PLAIN", validation_alias="KAFKA_SASL_MECHANISM")
    sasl_username: Annotated[str | None, Expected("a string")] = Field(
        None, validation_alias="KAFKA_SASL_USERNAME")
    sasl_password: Annotated[str | None, Expected("a string")] = Field(
        None, repr=False, validation_alias="KAFKA_SASL_PASSWORD")
    ssl_cafile: _TlsFile = Field(None, validation_alias="KAFKA_SSL_CAFILE")
    ssl_certfile: _TlsFile = Field(None, validation_alias="KAFKA_SSL_CERTFILE")
    ssl_keyfile: _TlsFile = Field(None, validation_alias="KAFKA_SSL_KEYFILE")

    @model_validator(mode="after")
    def _credentials_are_complete(self) -> KafkaSettings:
        if self.uses_sasl:
            for name in ("sasl_username", "sasl_password"):
                if getattr(self, name) is None:
                    raise self.fail(name, f"required when {self.env_var('security_protocol')}"
                                          f" is {self.security_protocol}")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise self.fail("ssl_certfile", f"required when {self.env_var('ssl_keyfile')} is set"
                                            " (a key alone is no client certificate)")
        return self

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
