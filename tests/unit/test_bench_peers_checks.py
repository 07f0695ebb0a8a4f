"""The correctness checks of bench/bench_peers.py can fail, and the peers' shared fold step is the fold.

The bench leaves a run out of its figures when the decisions or states a
system persisted differ from the pure fold; these tests hold that the state
check notices a difference, a missing stream and an extra one, ignores only
what the fold does not define (offsets, save time), and that the fold step
every peer runs (``bench/peers/peer_common.fold_step``) yields the decision
bytes of ``encode_decision`` over ``apply_day``, skipping a repeated day.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from sequencer.app.codecs import encode_decision, encode_event
from sequencer.domain import SequencerConfig, state_to_dict
from sequencer.adapters.files.sources import read_day_events

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str, path: Path):
    """Import a bench script by path, leaving ``sys.path`` as it was (the scripts extend it)."""
    saved = list(sys.path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module   # dataclasses look their module up while the class is built
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


@pytest.fixture(scope="module")
def bench_peers():
    return _load("bench_peers_under_test", BENCH / "bench_peers.py")


@pytest.fixture(scope="module")
def peer_common():
    return _load("peer_common_under_test", BENCH / "peers" / "peer_common.py")


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    sys.path.insert(0, str(BENCH))
    try:
        from synthetic import write_synthetic
    finally:
        sys.path.remove(str(BENCH))
    path = tmp_path_factory.mktemp("synthetic") / "days.csv"
    write_synthetic(path, 40, ["ES", "CL"])
    return read_day_events([path], SequencerConfig()).events


def test_state_check_passes_equal_states_and_ignores_offsets_and_save_time(bench_peers, events):
    reference = bench_peers.pure_fold(events)
    docs = [dict(doc, source_offsets={"t:0": 99}, saved_at="2026-01-01T00:00:00Z")
            for doc in reference.states.values()]
    assert bench_peers.check_states(docs, reference) is None


def test_state_check_names_a_different_a_missing_and_an_extra_stream(bench_peers, events):
    reference = bench_peers.pure_fold(events)
    docs = {stream: dict(doc) for stream, doc in reference.states.items()}
    docs["ES1"]["events_applied"] += 1
    del docs["CL2"]
    extra = dict(reference.states["ES1"], stream="NQ1", instrument="NQ")
    problem = bench_peers.check_states(list(docs.values()) + [extra], reference)
    assert problem is not None
    assert "missing ['CL2']" in problem and "different ['ES1']" in problem and "unexpected ['NQ1']" in problem


def test_fold_step_gives_the_reference_decision_bytes_and_skips_a_repeat(bench_peers, peer_common, events):
    reference = bench_peers.pure_fold(events)
    states: dict = {}
    produced = []
    for event in events:
        states[event.stream], decision = peer_common.fold_step(states.get(event.stream), encode_event(event))
        produced.append(decision)
    expected = [encode_decision(reference.decisions[(e.stream, e.date)]) for e in events]
    assert produced == expected
    again, decision = peer_common.fold_step(states[events[-1].stream], encode_event(events[-1]))
    assert decision is None and again is states[events[-1].stream]
    assert {s: bench_peers.comparable(state_to_dict(v)) for s, v in states.items()} == reference.states
