"""One Kafka connection: the client arguments and the TLS context, built once.

Every aiokafka client the code makes (producers, consumers, admin clients) and
the Faust app take their security arguments from a `KafkaConnection`.
Building a TLS context reads and parses the CA file and the client key pair,
so a connection builds it once, when it is made, and hands the same context to
every client; `KafkaConnection.of` returns one shared connection per distinct
set of connection settings, so code that only holds a `Settings` still gets
the one context::

    >>> from sequencer.settings import Settings
    >>> conn = KafkaConnection.of(Settings())
    >>> conn.aiokafka_kwargs()
    {'security_protocol': 'PLAINTEXT', 'ssl_context': None}
    >>> KafkaConnection.of(Settings()) is conn
    True
"""

from __future__ import annotations

import functools
import ssl
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time imported by `of` only: importing this module stays cheap
    from sequencer.settings import KafkaSettings

__all__ = ["KafkaConnection"]


class KafkaConnection:
    """Security arguments for aiokafka and Faust, from one `KafkaSettings`.

    A file named by ``KAFKA_SSL_*`` that is missing or unreadable raises
    `SettingsError` naming its variable, when the connection is made.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.ssl_context = _ssl_context(settings) if settings.uses_ssl else None
        kwargs: dict[str, Any] = {
            "security_protocol": settings.security_protocol,
            "ssl_context": self.ssl_context,
        }
        if settings.uses_sasl:
            kwargs.update(
                sasl_mechanism=settings.sasl_mechanism,
                sasl_plain_username=settings.sasl_username,
                sasl_plain_password=settings.sasl_password,
            )
        self._aiokafka_kwargs = kwargs

    @classmethod
    def of(cls, settings: KafkaSettings) -> KafkaConnection:
        """The shared connection for *settings*' connection fields (any `Settings` will do)."""
        from sequencer.settings import KafkaSettings

        own = {name: getattr(settings, name) for name in KafkaSettings.model_fields}
        return _shared(KafkaSettings(**own))

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.bootstrap_servers

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer``/admin.

        Always has ``security_protocol`` and ``ssl_context``; SASL protocols
        add ``sasl_mechanism``, ``sasl_plain_username`` and
        ``sasl_plain_password``. A new dict each call (callers may add to it),
        always the same TLS context.
        """
        return dict(self._aiokafka_kwargs)

    def faust_broker_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``faust.App`` that carry the same security.

        ``{}`` for PLAINTEXT, else ``{"broker_credentials": ...}`` holding a
        ``faust.SSLCredentials`` or ``faust.SASLCredentials`` (with the TLS
        context for SASL_SSL). Faust is imported here, not at module import.
        """
        settings = self.settings
        if settings.security_protocol == "PLAINTEXT":
            return {}
        import faust  # lazily: the CLI's light commands must not pay Faust's import

        credentials: Any
        if settings.security_protocol == "SSL":
            credentials = faust.SSLCredentials(self.ssl_context)
        else:
            credentials = faust.SASLCredentials(
                username=settings.sasl_username,
                password=settings.sasl_password,
                mechanism=settings.sasl_mechanism,
                ssl_context=self.ssl_context,  # None for SASL_PLAINTEXT
            )
        return {"broker_credentials": credentials}

    def __repr__(self) -> str:
        return f"KafkaConnection({self.bootstrap_servers}, {self.settings.security_protocol})"


# A process talks to one cluster or a few; equal settings share a connection
# (and so a TLS context). A failure (a missing file) is not cached.
@functools.lru_cache(maxsize=16)
def _shared(settings: KafkaSettings) -> KafkaConnection:
    return KafkaConnection(settings)


def _ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """Verifies the broker against ``ssl_cafile`` (or the system CAs when unset)
    and presents ``ssl_certfile``/``ssl_keyfile`` as a client certificate when set."""
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise settings.fail(name, f"no such file: {str(path)!r}")
    cafile = settings.ssl_cafile
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(cafile) if cafile else None)
    except (ssl.SSLError, OSError) as exc:
        raise settings.fail("ssl_cafile", f"cannot load CA file {str(cafile)!r}: {exc}") from None
    if settings.ssl_certfile is not None:
        keyfile = settings.ssl_keyfile
        try:
            context.load_cert_chain(str(settings.ssl_certfile), str(keyfile) if keyfile else None)
        except (ssl.SSLError, OSError) as exc:
            raise settings.fail(
                "ssl_certfile",
                f"cannot load client certificate {str(settings.ssl_certfile)!r}"
                f" (key {str(keyfile)!r}): {exc}") from None
    return context
