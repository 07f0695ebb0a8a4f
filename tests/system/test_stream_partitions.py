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

import json
import time
import urllib.request
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
    # Later days alternate; a few without a key, on either partition.
    later = [(i % 2, None if i % 6 in (1, 4) else b"ES1", e) for i, e in enumerate(events[10:])]
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

    home = [e for p, key, e in first + later if p == 0 and key]
    away = sorted((p, offset) for offset, (p, key) in _offsets(first + later) if p == 1 and key)
    keyless = sorted((p, offset) for offset, (p, key) in _offsets(first + later) if not key)
    assert 0 < len(away) < len(home) and {p for p, _ in keyless} == {0, 1}
    want_states, want_decisions = replay(home)
    (state,) = [cp.state for cp in setup.store().load_all()[0].values()]
    assert comparable(state) == comparable(want_states["ES1"])
    # Up to its last record folded (a refused record is no part of the state)
    folded_offsets = [offset for offset, (p, key) in _offsets(first + later) if p == 0 and key]
    assert state.source_offsets == {f"{setup.topic_events}:0": folded_offsets[-1] + 1}

    decisions = {(d["stream"], d["date"]): d for d in read_raw_decisions(setup)}
    assert decisions == {(d.stream, d.date): d.to_dict() for d in want_decisions}

    letters = {(d["source_partition"], d["source_offset"]): d for d in setup.dead_letters()}
    assert sorted(letters) == sorted(away + keyless)
    for where in away:
        assert letters[where]["reason"].startswith(
            f"wrong partition: ES1 arrived on partition 1 of {setup.topic_events}, but its state was folded "
            "from partition 0;")
    for where in keyless:
        assert letters[where]["key"] is None
        assert letters[where]["reason"].startswith(f"no key: ES1 arrived without a key on partition {where[0]} "
                                                   f"of {setup.topic_events}, a topic of 2 partitions")
    assert {d["stream"] for d in letters.values()} == {"ES1"}

    verified = setup.cli("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{len(keyless)} no key, {len(away)} wrong partition" in verified.stdout + verified.stderr
    # A rebuild from the log refuses the same records: the same state.
    rebuilt = setup.cli("rebuild", "--from", "log")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    (again,) = [cp.state for cp in setup.store().load_all()[0].values()]
    assert again == state


def _owned(worker) -> list[int]:
    with urllib.request.urlopen(f"{worker.url}/status", timeout=5) as response:
        return json.load(response)["owned_partitions"]


def test_two_workers_never_each_fold_a_stream_sent_without_a_key(kafka_bootstrap, tmp_path: Path):
    # Each worker owns one partition and sees only its records of a keyless
    # stream: before, each folded its half as a stream of its own (two states,
    # two decision sequences, one checkpoint file), and nothing was dead-lettered.
    events = read_day_events([SAMPLE / "trades_ES.csv"], SequencerConfig()).events
    spread = [e for e in events if e.stream == "ES1"][:20]
    keyed = [e for e in events if e.stream == "ES2"][:20]
    setup = Setup(kafka_bootstrap, tmp_path / "state", partitions=2)
    first = setup.start_worker(tmp_path / "worker1.log")
    second = None
    try:
        first.wait_ready()
        second = setup.start_worker(tmp_path / "worker2.log")
        second.wait_ready()
        deadline = time.monotonic() + 90
        while not (_owned(first) and _owned(second)):
            assert time.monotonic() < deadline, first.log_tail() + second.log_tail()
            time.sleep(0.5)
        ends: dict[int, int] = {}
        _send(setup, [(i % 2, None, e) for i, e in enumerate(spread)], ends)
        for p, end in setup.publish(keyed).items():
            ends[p] = max(ends.get(p, 0), end)
        setup.wait_consumed(dict(ends), first)
        setup.wait_consumed(dict(ends), second)
    finally:
        first.stop()
        if second is not None:
            second.stop()

    decisions = read_raw_decisions(setup)
    assert {d["stream"] for d in decisions} == {"ES2"}
    assert [d for d in decisions if d["stream"] == "ES2"] == [d.to_dict() for d in replay(keyed)[1]]
    letters = setup.dead_letters()
    assert sorted((d["source_partition"], d["stream"]) for d in letters) == sorted(
        (i % 2, "ES1") for i in range(len(spread)))
    assert all(d["reason"].startswith("no key: ES1 arrived without a key") for d in letters)
    assert set(setup.store().load_all()[0]) == {"ES2"}


def _offsets(placed):
    """(offset in its partition, (partition, key)) of each placed record, in sending order."""
    next_offset: dict[int, int] = {}
    for partition, key, _ in placed:
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        yield offset, (partition, key)
