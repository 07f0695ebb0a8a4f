"""Two workers of one configuration: each writes and serves only the streams of
the partitions it owns. Issue 13 point 3: worker A folded the first half, B
joined and folded its share of the rest, and A's clean stop wrote its stale
copies of B's streams over B's good checkpoints."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

from sequencer.adapters.http.api_client import WorkerApi
from sequencer.domain import SequencerConfig
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events

from tests.support.worker_process import WorkerSetup

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _status(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as response:
        return json.load(response)


def _streams_held(port: int) -> dict[str, str]:
    return {row["stream"]: row["last_processed_date"]
            for row in WorkerApi(f"http://127.0.0.1:{port}").streams()}


def _checkpoint_dates(setup: WorkerSetup) -> dict[str, str | None]:
    loaded, refused = setup.store().load_all()
    assert not refused, refused
    return {stream: cp.state.last_processed_date for stream, cp in loaded.items()}


def _wait_for(what, predicate, timeout_s: float, log) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached in {timeout_s} s; log:\n{log()}"
        time.sleep(0.5)


def test_a_clean_stop_never_writes_states_of_partitions_lost_to_another_worker(kafka_bootstrap, tmp_path):
    events = read_day_events(sorted(SAMPLE.glob("*.csv")), SequencerConfig()).events
    split = events[len(events) // 2].date
    head = [e for e in events if e.date < split]
    tail = [e for e in events if e.date >= split]
    expected = {s: st.last_processed_date for s, st in replay_events(events, SequencerConfig()).states.items()}
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=3,
                        extra_env={"SEQUENCER_FAST_DRAIN": os.environ.get("TEST_FAST_DRAIN", "false")})

    first = setup.start_worker(tmp_path / "worker1.log")
    second = None
    try:
        first.wait_ready()
        setup.wait_consumed(setup.publish(head), first)
        assert len(_streams_held(first.web_port)) == len(expected)  # A holds every stream

        second = setup.start_worker(tmp_path / "worker2.log")
        second.wait_ready()
        _wait_for("a partition for each worker",
                  lambda: _status(first.web_port)["owned_partitions"] and _status(second.web_port)["owned_partitions"],
                  90, second.log_tail)
        owned_first = set(_status(first.web_port)["owned_partitions"])
        owned_second = set(_status(second.web_port)["owned_partitions"])
        assert not owned_first & owned_second

        setup.wait_consumed(setup.publish(tail), second, timeout_s=180)
        # Every checkpoint reaches the end (each worker writes its own streams every 2 s).
        _wait_for("checkpoints at the last dates", lambda: _checkpoint_dates(setup) == expected, 60,
                  lambda: first.log_tail() + second.log_tail())

        held_first, held_second = _streams_held(first.web_port), _streams_held(second.web_port)
        # Each serves only its own streams, and those are current.
        assert held_first and held_second
        assert not set(held_first) & set(held_second), (held_first, held_second)
        assert {**held_first, **held_second} == expected

        assert first.stop() == 0, first.log_tail()
        # A's final write took only its own streams: B's checkpoints did not go back.
        assert _checkpoint_dates(setup) == expected, first.log_tail()
    finally:
        first.stop()
        if second is not None:
            assert second.stop() == 0, second.log_tail()
    assert _checkpoint_dates(setup) == expected
