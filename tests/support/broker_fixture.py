"""Pytest plugin: one Kafka-compatible broker per test session.

Under pytest-xdist (the default, see pyproject.toml) each worker process has
its own session, so its own broker on its own free port: the processes share
nothing but the machine.

Register it from ``tests/conftest.py``::

    pytest_plugins = ["tests.support.broker_fixture"]

(or ``pytest -p tests.broker_fixture``; the repository root must be importable,
e.g. ``pythonpath = ["."]`` in the pytest config). Fixtures:

``embedded_broker`` (session)
    the `sequencer.adapters.kafka.embedded_broker.EmbeddedBroker` serving the session, started on a
    free loopback port. Tests that pause/resume it must resume it before they
    return. Skipped when an external broker is used.
``kafka_bootstrap`` (session)
    ``"host:port"`` of the session's broker: the embedded one, or the value of
    ``KAFKA_BOOTSTRAP_SERVERS`` when that is set (no broker is started then).

The broker's output goes to ``<session tmp dir>/tansu.log``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker

logger = logging.getLogger(__name__)

#: Environment variable naming an external broker to test against instead.
EXTERNAL_BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"


def _external_bootstrap() -> str | None:
    value = os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip()
    return value or None


@pytest.fixture(scope="session")
def _session_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker | None]:
    """The session's EmbeddedBroker, or None when an external broker is configured."""
    if _external_bootstrap() is not None:
        yield None
        return
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    broker = EmbeddedBroker(log_path=log_path)
    broker.start()
    logger.info("session broker %s, log %s", broker.bootstrap, log_path)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def embedded_broker(_session_broker: EmbeddedBroker | None) -> EmbeddedBroker:
    """The session's EmbeddedBroker (same instance as behind `kafka_bootstrap`)."""
    if _session_broker is None:
        pytest.skip(f"{EXTERNAL_BOOTSTRAP_ENV} is set: no embedded broker in this session")
    return _session_broker


@pytest.fixture(scope="session")
def kafka_bootstrap(_session_broker: EmbeddedBroker | None) -> str:
    """Bootstrap servers of the session's broker, embedded or external."""
    if _session_broker is None:
        external = _external_bootstrap()
        assert external is not None
        return external
    return _session_broker.bootstrap
