"""A real worker fed by a producer that places one stream's records itself: after the
stream's first days on partition 0, its later days alternate between partitions 0 and
1 (kafka-go's default round-robin balancer, or ``partition=`` chosen by the producer),
some sent without a key (the sticky partitioner's case).

The worker folds the stream from the partition its state came from only and
dead-letters the others' records, each with a reason naming both partitions. So the
state, across a restart (its changelog restored), is the fold of that partition's
days, its offsets name that partition only, and `sequencer verify` finds the log,
table and checkpoints agreeing. Before, the days of partition 1 were folded or
refused as "out of order" by which fetch came first, the state's changelog records
went to both partitions, and verify reported drift.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sequencer.app.codecs import encode_event
from sequencer.adapters.files.sources import read_day_events
from sequencer.domain import SequencerConfig

from tests.support.recovery_helpers import SAMPLE, Setup, comparable, read_raw_decisions, replay

pytestmark = pytest.mark.broker


def _send(setup: Setup, placed, ends: dict[int, int]) -> None:
    for partition, key, event in placed:
        for p, end in setup.produce_raw([(key, encode_event(event))], partition=partition).items():
            ends[p] = max(ends.get(p, 0), end)


def test_a_stream_spread_over_two_partitions_is_folded_from_its_own_and_the_rest_dead_lettered(
        kafka_bootstrap, tmp_path: Path):
    events = [e for e in read_day_events([SAMPLE / "trades_ES.csv"], SequencerConfig()).events
              if e.stream == "ES1"][:40]
    setup = Setup(kafka_bootstrap, tmp_path / "state", partitions=2)
    first = [(0, b"ES1", e) for e in events[:10]]
    # Later days alternate; every third one of partition 1 without a key.
    later = [(i % 2, None if i % 6 == 1 else b"ES1", e) for i, e in enumerate(events[10:])]
    ends: dict[int, int] = {}
    with setup.start_worker(tmp_path / "worker1.log") as worker:
        worker.wait_ready()
        _send(setup, first, ends)
        setup.wait_consumed(dict(ends), worker)
        _send(setup, later[:14], ends)
        setup.wait_consumed(dict(ends), worker)
        assert worker.stop() == 0, worker.log_tail()
    # A second worker restores the stream from its changelog and goes on.
    with setup.start_worker(tmp_path / "worker2.log") as worker:
        worker.wait_ready()
        _send(setup, later[14:], ends)
        setup.wait_consumed(dict(ends), worker)
        assert worker.stop() == 0, worker.log_tail()

    home = [e for p, _, e in first + later if p == 0]
    away = [(p, key) for p, key, _ in later if p == 1]
    assert 0 < len(away) < len(home)
    want_states, want_decisions = replay(home)
    (state,) = [cp.state for cp in setup.store().load_all()[0].values()]
    assert comparable(state) == comparable(want_states["ES1"])
    assert state.source_offsets == {f"{setup.topic_events}:0": ends[0]}

    decisions = {(d["stream"], d["date"]): d for d in read_raw_decisions(setup)}
    assert decisions == {(d.stream, d.date): d.to_dict() for d in want_decisions}

    letters = setup.dead_letters()
    assert sorted((d["source_partition"], d["source_offset"]) for d in letters) == \
        [(1, offset) for offset in range(len(away))]
    for letter in letters:
        assert letter["stream"] == "ES1"
        assert letter["reason"].startswith(f"wrong partition: ES1 arrived on partition 1 of {setup.topic_events}")
        assert "but its state was folded from partition 0;" in letter["reason"]
        assert ("(this record has no key)" in letter["reason"]) is (letter["key"] is None)
    assert any(letter["key"] is None for letter in letters)

    verified = setup.cli("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{len(away)} wrong partition" in verified.stdout + verified.stderr
