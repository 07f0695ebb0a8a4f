"""The events topic's partition count against the worker's setting and its changelogs.

A stream's state is written to the changelog partition of its events
partition. An events topic made with more partitions than the worker was
told (by a broker's auto-creation when a producer wrote first, or by another
team) left the worker folding the batches of the extra partitions for ever,
each refused by the producer as an unknown changelog partition; it is how
`test_broker_outage`'s worker-before-broker test failed now and then.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from sequencer.adapters.files.sources import read_day_events
from sequencer.adapters.kafka.topics import create_topics, partition_counts
from sequencer.domain import SequencerConfig

from tests.support.recovery_helpers import SAMPLE, Setup, comparable, replay

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def events():
    config = SequencerConfig()
    return [e for e in read_day_events(sorted(SAMPLE.glob("*.csv")), config).events if e.date < "2018-09-01"]


def test_a_worker_follows_the_events_topic_s_partition_count_not_its_setting(kafka_bootstrap, tmp_path, events):
    setup = Setup(kafka_bootstrap, tmp_path / "state", partitions=2)
    asyncio.run(create_topics(kafka_bootstrap, {setup.topic_events: 3}))  # made before, not by the worker
    worker = setup.start_worker(tmp_path / "worker.log")
    try:
        ends = setup.publish(events)
        assert ends.get(2), f"no stream in partition 2, the one past the setting: {ends}"
        setup.wait_consumed(ends, worker, timeout_s=90)
        decisions = setup.decisions()
    finally:
        code = worker.stop()
    assert code == 0, worker.log_tail()
    assert "has 3 partitions, not the 2 configured" in worker.log_path.read_text()
    changelog = f"{setup.group}-stream-states-changelog"
    assert asyncio.run(partition_counts(kafka_bootstrap, [changelog])) == {changelog: 3}

    expected, expected_decisions = replay(events)
    loaded, refused = setup.store().load_all()
    assert not refused and sorted(loaded) == sorted(expected)
    for stream in expected:
        assert comparable(loaded[stream].state) == comparable(expected[stream]), stream
    assert [d.to_dict() for d in decisions] == [
        d.to_dict() for d in sorted(expected_decisions, key=lambda d: (d.date, d.stream))]


def test_a_worker_refuses_to_start_on_changelogs_with_fewer_partitions_than_the_events(kafka_bootstrap, tmp_path):
    setup = Setup(kafka_bootstrap, tmp_path / "state", partitions=2)
    changelog = f"{setup.group}-stream-states-changelog"
    # An events topic grown from 2 to 3 partitions after the worker had made its changelogs.
    asyncio.run(create_topics(kafka_bootstrap, {setup.topic_events: 3, changelog: 2}, compacted=[changelog]))
    command = [sys.executable, "-m", "sequencer.cli.main", "worker", "--config-name", setup.name,
               "--state-dir", str(setup.state_dir)]
    done = subprocess.run(command, env=setup.env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert f"topic {setup.topic_events} has 3 partitions, but changelog {changelog} has 2" in done.stderr
    assert "new config name" in done.stderr


def test_rebuild_makes_changelogs_with_the_events_topic_s_partition_count(kafka_bootstrap, tmp_path, events):
    setup = Setup(kafka_bootstrap, tmp_path / "state", partitions=2)
    asyncio.run(create_topics(kafka_bootstrap, {setup.topic_events: 3}))
    setup.publish(events[:200])
    done = setup.cli("rebuild", "--from", "log")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    names = [f"{setup.group}-{table}-changelog" for table in ("stream-states", "last-events")]
    assert asyncio.run(partition_counts(kafka_bootstrap, names)) == {name: 3 for name in names}
