"""Scale-out: two workers of one configuration share the partitions; when one
stops, the other takes over its partitions and their state from the changelog,
and the final states equal a batch replay of all events."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sequencer.adapters.http.api_client import WorkerApi
from sequencer.domain import SequencerConfig, state_to_dict
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events

from tests.support.worker_process import WorkerSetup

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _streams_held(port: int) -> set[str]:
    return {row["stream"] for row in WorkerApi(f"http://127.0.0.1:{port}").streams()}


def _wait_reachable(port: int, timeout: float = 60) -> None:
    client = WorkerApi(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + timeout
    while not client.reachable():
        assert time.monotonic() < deadline, f"worker on port {port} never answered"
        time.sleep(0.3)


def test_two_workers_share_partitions_and_one_takes_over(kafka_bootstrap, tmp_path):
    events = read_day_events(sorted(SAMPLE.glob("*.csv")), SequencerConfig()).events
    split = events[len(events) // 2].date
    head = [e for e in events if e.date < split]
    tail = [e for e in events if e.date >= split]
    # Three partitions: the eight sample streams hash (murmur2) onto all three.
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=3,
                        extra_env={"SEQUENCER_FAST_DRAIN": os.environ.get("TEST_FAST_DRAIN", "false")})

    first = setup.start_worker(tmp_path / "worker1.log")
    second = setup.start_worker(tmp_path / "worker2.log")
    try:
        _wait_reachable(first.web_port)
        _wait_reachable(second.web_port)
        time.sleep(8)  # let the group settle after the second member joins (rebalance timeout 6 s)
        ends = setup.publish(head)
        setup.wait_consumed(ends, first)
        held_first = _streams_held(first.web_port)
        held_second = _streams_held(second.web_port)
        assert held_first and held_second, (held_first, held_second)
        assert held_first | held_second == {e.stream for e in events}

        assert second.stop() == 0, second.log_tail()
        # From here on the first worker knows the second one's streams only
        # through the changelog: remove every checkpoint it could seed from.
        setup.store().clear_all()
        more = setup.publish(tail)
        setup.wait_consumed(more, first, timeout_s=180)
        decisions = setup.decisions()
    finally:
        assert first.stop() == 0, first.log_tail()
        second.stop()

    expected_decisions: list = []
    expected = replay_events(events, SequencerConfig(), on_decision=expected_decisions.append).states
    loaded, refused = setup.store().load_all()
    assert not refused
    assert sorted(loaded) == sorted(expected)
    for stream, checkpoint in loaded.items():
        found = state_to_dict(checkpoint.state)
        wanted = state_to_dict(expected[stream])
        found.pop("source_offsets"), wanted.pop("source_offsets")
        assert found == wanted, stream
    assert {(d.stream, d.date) for d in decisions} == {(d.stream, d.date) for d in expected_decisions}
