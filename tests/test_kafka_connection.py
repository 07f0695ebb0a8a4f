"""KafkaConnection: one TLS context per connection, shared by every client it configures;
the aiokafka and Faust arguments for PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.settings import Settings, SettingsError

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A real certificate and key (PEM files), made by openssl."""
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def context_builds(monkeypatch: pytest.MonkeyPatch) -> list[ssl.SSLContext]:
    """Every TLS context built while the test runs."""
    built: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        context = real(*args, **kwargs)
        built.append(context)
        return context

    monkeypatch.setattr(ssl, "create_default_context", counting)
    return built


@needs_openssl
def test_tls_context_is_built_once_per_connection(tmp_path: Path, context_builds: list) -> None:
    # Faust's credentials import aiohttp, which builds contexts of its own at import
    pytest.importorskip("faust").SSLCredentials  # noqa: B018
    context_builds.clear()
    cert, key = self_signed(tmp_path, "sequencer-test")
    settings = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(cert),
                                  "KAFKA_SSL_CERTFILE": str(cert), "KAFKA_SSL_KEYFILE": str(key)})
    connection = KafkaConnection(settings)
    assert len(context_builds) == 1
    # three clients and the Faust app: the same context, nothing built again
    contexts = [connection.aiokafka_kwargs()["ssl_context"] for _ in range(3)]
    contexts.append(connection.faust_broker_kwargs()["broker_credentials"].context)
    assert all(c is context_builds[0] for c in contexts)
    assert len(context_builds) == 1
    # it is the context of these files: the CA is loaded, a client certificate presented
    assert any(c["subject"] == ((("commonName", "sequencer-test"),),)
               for c in contexts[0].get_ca_certs())
    assert contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname


@needs_openssl
def test_code_holding_only_settings_shares_one_connection(tmp_path: Path, context_builds: list) -> None:
    cert, _ = self_signed(tmp_path, "ca")
    other, _ = self_signed(tmp_path, "other")
    settings = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(cert)})
    first = KafkaConnection.of(settings)
    # the same settings again, rebuilt from the environment, or differing only
    # outside the connection (a worker's web port): the same connection
    assert KafkaConnection.of(settings) is first
    assert KafkaConnection.of(Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL",
                                                 "KAFKA_SSL_CAFILE": str(cert)})) is first
    assert KafkaConnection.of(settings.replace(web_port=7001, partitions=9)) is first
    assert len(context_builds) == 1
    # other connection settings: another connection, its own context
    changed = KafkaConnection.of(settings.replace(ssl_cafile=other))
    assert changed is not first and len(context_builds) == 2
    assert changed.ssl_context is context_builds[1]


def test_a_missing_tls_file_fails_each_time_until_it_exists(tmp_path: Path) -> None:
    cafile = tmp_path / "ca.pem"
    settings = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": str(cafile)})
    for _ in range(2):  # a failure is not remembered
        with pytest.raises(SettingsError, match=f"^KAFKA_SSL_CAFILE: no such file: '{cafile}'"):
            KafkaConnection.of(settings)
    if shutil.which("openssl") is None:
        return
    cert, _ = self_signed(tmp_path, "late")
    cert.rename(cafile)
    assert isinstance(KafkaConnection.of(settings).ssl_context, ssl.SSLContext)


def test_plaintext_builds_no_context(context_builds: list) -> None:
    connection = KafkaConnection.of(Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "k1:9092, k2:9092"}))
    assert connection.aiokafka_kwargs() == {"security_protocol": "PLAINTEXT", "ssl_context": None}
    assert connection.faust_broker_kwargs() == {}
    assert connection.ssl_context is None and context_builds == []
    assert connection.bootstrap_servers == "k1:9092,k2:9092"


def test_each_call_gives_a_new_dict() -> None:
    connection = KafkaConnection.of(Settings())
    mine = connection.aiokafka_kwargs()
    mine["client_id"] = "x"  # a caller adding its own arguments changes nobody else's
    assert "client_id" not in connection.aiokafka_kwargs()


SASL_ENV = {"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "KAFKA_SASL_USERNAME": "desk",
            "KAFKA_SASL_PASSWORD": "s3cret"}


def test_sasl_plaintext_arguments(context_builds: list) -> None:
    faust = pytest.importorskip("faust")
    connection = KafkaConnection.of(Settings.from_env({**SASL_ENV, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}))
    assert connection.aiokafka_kwargs() == {
        "security_protocol": "SASL_PLAINTEXT", "ssl_context": None, "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "desk", "sasl_plain_password": "s3cret"}
    credentials = connection.faust_broker_kwargs()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials) and credentials.ssl_context is None
    assert context_builds == []
    assert "s3cret" not in repr(connection)


def test_sasl_ssl_arguments_share_the_context_with_faust(context_builds: list) -> None:
    faust = pytest.importorskip("faust")
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    connection = KafkaConnection.of(Settings.from_env({**SASL_ENV, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}))
    ours = connection.aiokafka_kwargs()
    credentials = connection.faust_broker_kwargs()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    # what Faust hands aiokafka is what we hand aiokafka ourselves, context included
    assert dict(credentials_to_aiokafka_auth(credentials)) == ours
    assert ours["ssl_context"] is connection.ssl_context is context_builds[-1]


def test_sasl_ssl_arguments_are_accepted_by_aiokafka() -> None:
    aiokafka = pytest.importorskip("aiokafka")
    connection = KafkaConnection.of(Settings.from_env({**SASL_ENV, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}))

    async def build() -> None:
        # construction checks the security arguments without connecting
        for cls in (aiokafka.AIOKafkaConsumer, aiokafka.AIOKafkaProducer):
            client = cls(bootstrap_servers=connection.settings.bootstrap_list, **connection.aiokafka_kwargs())
            inner = client._client if hasattr(client, "_client") else client.client
            assert inner._security_protocol == "SASL_SSL"
            assert inner._sasl_mechanism == "SCRAM-SHA-256"

    asyncio.run(build())
