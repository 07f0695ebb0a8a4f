"""`sequencer.adapters.faust.consumer` on its own: the fast-drain consumer is installed on
the Faust version it was written against and refused on any other (Faust's own
consumer stays). Its delivery (every record once, in order, and again after a
seek back) is tested on the embedded broker by tests/contract/test_consumer_port.py,
whose Faust app installs it."""

from __future__ import annotations

import logging

import faust
import pytest
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaFaustConsumer

from sequencer.adapters.faust import consumer as faust_consumer


def app(name: str) -> faust.App:
    return faust.App(name, broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)


def test_installed_on_the_supported_faust_version():
    assert faust.__version__.startswith(faust_consumer.SUPPORTED_FAUST)  # the version this project pins
    target = app("fast-drain-on")
    assert faust_consumer.install(target) is True
    installed = target.transport.Consumer
    assert installed is not AIOKafkaFaustConsumer and issubclass(installed, AIOKafkaFaustConsumer)
    assert "_drain_messages" in vars(installed)  # the one method it replaces
    assert isinstance(target.consumer, installed)


@pytest.mark.parametrize("version", ["0.16.0", "1.0.0", "0.14.9"])
def test_refused_on_another_faust_version_which_keeps_its_own_consumer(monkeypatch, caplog, version):
    monkeypatch.setattr(faust, "__version__", version)
    target = app(f"fast-drain-off-{version}")
    with caplog.at_level(logging.WARNING, logger=faust_consumer.__name__):
        assert faust_consumer.install(target) is False
    assert target.transport.Consumer is AIOKafkaFaustConsumer
    assert f"faust-streaming {version}: fast drain not verified" in caplog.text
