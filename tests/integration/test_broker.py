"""Integration tests of sequencer.adapters.kafka.embedded_broker against the real Tansu binary.

Each test drives aiokafka through ``asyncio.run`` so it needs no pytest-asyncio
configuration. Fixtures come from ``tests/support/broker_fixture.py``.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.adapters.kafka import embedded_broker as broker_mod
from sequencer.adapters.kafka.embedded_broker import (
    BrokerStartError,
    EmbeddedBroker,
    free_port,
    probe_metadata,
)
from sequencer.adapters.kafka.topics import create_topics


pytestmark = pytest.mark.broker  # spawns the Tansu binary


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _split(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return host, int(port)


async def _consume(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list = []
    try:
        async with asyncio.timeout(timeout):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for part in batch.values():
                    records.extend(part)
    finally:
        await consumer.stop()
    return records


def test_session_broker_is_ready(embedded_broker: EmbeddedBroker, kafka_bootstrap: str) -> None:
    assert embedded_broker.running
    assert kafka_bootstrap == embedded_broker.bootstrap == f"127.0.0.1:{embedded_broker.port}"
    brokers = probe_metadata("127.0.0.1", embedded_broker.port)
    assert [(h, p) for _, h, p in brokers] == [("127.0.0.1", embedded_broker.port)]


def test_produce_consume_round_trip(kafka_bootstrap: str) -> None:
    from aiokafka import AIOKafkaProducer

    topic = _name("roundtrip")
    compacted = _name("roundtrip-changelog")

    async def run() -> list:
        await create_topics(kafka_bootstrap, {topic: 2, compacted: 2}, {compacted})
        # Idempotent: a second call finds both topics and creates nothing.
        await create_topics(kafka_bootstrap, {topic: 2, compacted: 2}, {compacted})
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            meta = await producer.send_and_wait(topic, b"value-1", key=b"ES1")
            assert meta.topic == topic and meta.offset == 0
        finally:
            await producer.stop()
        return await _consume(kafka_bootstrap, topic, 1)

    records = asyncio.run(run())
    assert [(r.key, r.value) for r in records] == [(b"ES1", b"value-1")]


def test_create_topics_partitions_visible(kafka_bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    topic = _name("parts")

    async def run() -> dict:
        await create_topics(kafka_bootstrap, {topic: 4})
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            return {t["topic"]: t for t in await admin.describe_topics(None)}
        finally:
            await admin.close()

    described = asyncio.run(run())
    assert len(described[topic]["partitions"]) == 4


def test_create_topics_rejects_unknown_compacted(kafka_bootstrap: str) -> None:
    with pytest.raises(ValueError, match="compacted"):
        asyncio.run(create_topics(kafka_bootstrap, {"a": 1}, {"b"}))


def test_stop_frees_port_and_is_idempotent(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    with broker:
        port = broker.port
        assert port is not None and broker.running
    assert not broker.running
    broker.stop()  # second stop: no error
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    # Port can be bound again, by a new broker on the same port.
    again = EmbeddedBroker(port=port).start()
    try:
        assert probe_metadata("127.0.0.1", port)
    finally:
        again.stop()


def test_stop_before_start_is_noop() -> None:
    EmbeddedBroker().stop()


def test_start_fails_clearly_when_port_is_taken() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = EmbeddedBroker(port=port)
        with pytest.raises(BrokerStartError, match="already in use"):
            broker.start(timeout=5)
        assert not broker.running


def test_start_reports_exit_with_log_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Skip the up-front port check so the broker itself meets the bound port,
    # fails and exits: the error must say so and quote its log.
    monkeypatch.setattr(broker_mod, "_port_is_free", lambda host, port: True)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log")
        with pytest.raises(BrokerStartError) as info:
            broker.start(timeout=15)
    message = str(info.value)
    assert "exited" in message
    assert "Address in use" in message  # from the broker's own log
    assert not broker.running


def test_start_times_out_and_kills_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # A "broker" that never listens.
    monkeypatch.setattr(EmbeddedBroker, "command", lambda self: ["sleep", "60"])
    broker = EmbeddedBroker(port=free_port())
    with pytest.raises(BrokerStartError, match="not ready after"):
        broker.start(timeout=1.0)
    assert not broker.running and broker.pid is None


def test_pause_makes_produce_wait_then_resume_delivers(embedded_broker: EmbeddedBroker) -> None:
    from aiokafka import AIOKafkaProducer

    topic = _name("outage")
    bootstrap = embedded_broker.bootstrap

    async def run() -> list:
        await create_topics(bootstrap, {topic: 1})
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=30000)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"before")
            embedded_broker.pause()
            try:
                pending = asyncio.ensure_future(producer.send_and_wait(topic, b"during"))
                await asyncio.sleep(1.5)
                assert not pending.done(), "produce finished while the broker was frozen"
            finally:
                embedded_broker.resume()
            meta = await asyncio.wait_for(pending, 25)
            assert meta.offset == 1
        finally:
            if embedded_broker.paused:
                embedded_broker.resume()
            await producer.stop()
        return await _consume(bootstrap, topic, 2)

    records = asyncio.run(run())
    assert [r.value for r in records] == [b"before", b"during"]
    assert embedded_broker.running and not embedded_broker.paused


def test_pause_requires_running_broker() -> None:
    with pytest.raises(RuntimeError):
        EmbeddedBroker().pause()


def test_create_topics_uses_the_security_settings(kafka_bootstrap: str) -> None:
    """A worker on a TLS/SASL cluster creates its topics with the same security as its
    clients: PLAINTEXT settings work here, TLS settings cannot reach a plaintext broker."""
    from sequencer.settings import Settings

    plaintext = Settings.from_env({}, bootstrap_servers=kafka_bootstrap)
    topic = _name("secure")
    asyncio.run(create_topics(kafka_bootstrap, {topic: 1}, security=KafkaConnection.of(plaintext).aiokafka_kwargs()))

    tls = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "SSL"}, bootstrap_servers=kafka_bootstrap)
    from aiokafka.errors import KafkaError

    with pytest.raises((asyncio.TimeoutError, KafkaError, OSError)):
        asyncio.run(asyncio.wait_for(
            create_topics(kafka_bootstrap, {_name("tls"): 1}, security=KafkaConnection.of(tls).aiokafka_kwargs()), 3))
