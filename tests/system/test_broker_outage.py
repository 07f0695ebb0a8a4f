"""The broker unreachable at start or for a while: the worker and the streamer
wait with backoff, say so plainly, and continue once it is back; nothing is lost.

Each test runs its own EmbeddedBroker (pausing the session broker would stall
the other tests). Expected values come from `sequencer replay` of the same
events.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker, free_port
from sequencer.domain import SequencerConfig
from sequencer.adapters.files.sources import read_day_events
from streamer.publisher import EventPublisher

from tests.support.recovery_helpers import SAMPLE, Setup, comparable, replay

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture(scope="module")
def events():
    all_events = read_day_events(sorted(SAMPLE.glob("*.csv")), SequencerConfig()).events
    return [e for e in all_events if e.date < "2018-07-01"]


class Publisher(threading.Thread):
    """The streamer's publisher in a thread, recording what it tells the user."""

    def __init__(self, bootstrap: str, topic: str, events, rate: float | None = None) -> None:
        super().__init__(name="outage-publisher", daemon=True)
        self.args = (bootstrap, topic, events, rate)
        self.lines: list[str] = []
        self.ends: dict[int, int] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        bootstrap, topic, events, rate = self.args

        async def go() -> None:
            async with EventPublisher(bootstrap, topic, announce=self.lines.append) as publisher:
                await publisher.publish_events(events, rate=rate)
                self.ends.update(publisher.end_offsets)
        try:
            asyncio.run(go())
        except BaseException as error:  # noqa: BLE001 - the test reports it
            self.error = error


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _assert_matches_replay(setup: Setup, events, decisions) -> None:
    expected, expected_decisions = replay(events)
    loaded, refused = setup.store().load_all()
    assert not refused
    assert sorted(loaded) == sorted(expected)
    for stream in expected:
        assert comparable(loaded[stream].state) == comparable(expected[stream]), stream
    assert [d.to_dict() for d in decisions] == [
        d.to_dict() for d in sorted(expected_decisions, key=lambda d: (d.date, d.stream))]


def test_worker_and_streamer_started_before_the_broker_exists(tmp_path, events):
    port = free_port()
    setup = Setup(f"127.0.0.1:{port}", tmp_path / "state", partitions=2)
    worker = setup.start_worker(tmp_path / "worker.log", create_topics=False)
    publisher = None
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "broker.log")
    try:
        _wait_for(lambda: "unreachable" in worker.log_tail(), 30, "the worker to report the broker unreachable")
        assert "retrying in" in worker.log_tail()
        assert worker.alive()
        publisher = Publisher(setup.bootstrap, setup.topic_events, events)
        publisher.start()
        _wait_for(lambda: any("unreachable" in line for line in publisher.lines), 30,
                  "the streamer to report the broker unreachable")
        assert any("retrying in" in line for line in publisher.lines), publisher.lines
        time.sleep(1.0)
        broker.start()          # now the broker exists; both must carry on by themselves
        publisher.join(120)
        assert not publisher.is_alive() and publisher.error is None, publisher.error
        assert any("reachable again" in line for line in publisher.lines), publisher.lines
        assert sum(publisher.ends.values()) == len(events)
        setup.wait_consumed(publisher.ends, worker)
        decisions = setup.decisions()
    finally:
        code = worker.stop()
        broker.stop()
    assert code == 0, worker.log_tail()
    _assert_matches_replay(setup, events, decisions)


def test_broker_paused_mid_run(tmp_path, events):
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        setup = Setup(broker.bootstrap, tmp_path / "state", partitions=2)
        worker = setup.start_worker(tmp_path / "worker.log")
        try:
            half = len(events) // 2
            first = setup.publish(events[:half])
            setup.wait_consumed(first, worker)
            publisher = Publisher(setup.bootstrap, setup.topic_events, events[half:], rate=200)
            publisher.start()
            time.sleep(1.0)
            broker.pause()                      # SIGSTOP: connections open, nothing answers
            try:
                time.sleep(10.0)                # longer than the group session timeout (6 s)
                assert worker.alive(), worker.log_tail()
                assert publisher.is_alive(), publisher.error
            finally:
                broker.resume()
            publisher.join(120)
            assert not publisher.is_alive() and publisher.error is None, publisher.error
            assert any("waiting for" in line or "retrying" in line for line in publisher.lines), publisher.lines
            ends = {p: max(first.get(p, 0), publisher.ends.get(p, 0)) for p in set(first) | set(publisher.ends)}
            setup.wait_consumed(ends, worker)
            decisions = setup.decisions()
        finally:
            code = worker.stop()
        assert code == 0, worker.log_tail()
    _assert_matches_replay(setup, events, decisions)
