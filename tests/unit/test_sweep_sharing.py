"""The claim fold sharing rests on: trade-neutral keys change no trade projection.

``sequencer.app.sweep.sharing`` lets configurations that differ only in
``target_mode``, ``max_target_pct`` and ``promotion_days`` share one fold. Here
each of those keys is varied over random inputs and the decisions' trade
projections (everything the metrics and trade rules read) must stay equal; and
a key outside the set (depth, median_position, time_change, ...) must change
them on the real data, so the projection is not trivially constant.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.domain import SequencerConfig
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events
from sequencer.app.sweep.grid import SweepPoint
from sequencer.app.sweep.sharing import TRADE_NEUTRAL_KEYS, fold_config, group_points

from tests.unit.test_equivalences import sequences

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

#: The decision fields the metrics and trade rules read (SPEC 8.1-8.3), and the
#: inputs of the next day's trade (next_slot, no_trade_next).
TRADE_FIELDS = ("stream", "instrument", "date", "traded_slot", "result", "peak", "slot_sums",
                "time_change", "next_slot", "no_trade_next", "rolling_median", "traded", "profit",
                "profit_usd")

NEUTRAL_VALUES = {
    "target_mode": ["base", "rolling_median", "median_ladder"],
    "max_target_pct": [100, 150, 400, 1000],
    "promotion_days": [0, 1, 2, 5],
}


def projections(events, config):
    decisions = []
    replay_events(events, config, on_decision=decisions.append)
    return [tuple(dict(getattr(d, f)) if f == "slot_sums" else getattr(d, f) for f in TRADE_FIELDS)
            for d in decisions]


def with_profits(event, data):
    """The event with a recorded profit on some of its slots (the sequences have none)."""
    profits = st.one_of(st.none(), st.integers(-40, 40).map(lambda n: n / 4))
    slots = {slot: outcome._replace(profit=data.draw(profits)) for slot, outcome in event.slots.items()}
    return event._replace(slots=MappingProxyType(slots))


def test_the_neutral_keys_are_the_ones_varied_here():
    assert set(TRADE_NEUTRAL_KEYS) == set(NEUTRAL_VALUES)


@settings(max_examples=150, deadline=None)
@given(sequences(max_per_stream=30), st.sampled_from(sorted(NEUTRAL_VALUES)), st.data())
def test_a_trade_neutral_key_changes_no_trade_projection(case, key, data):
    config, events = case
    events = [with_profits(event, data) for event in events]
    other = dataclasses.replace(config, **{key: data.draw(st.sampled_from(NEUTRAL_VALUES[key]))})
    assert projections(events, other) == projections(events, config)
    assert projections(events, fold_config(config)) == projections(events, config)


@pytest.fixture(scope="module")
def sample_events():
    return read_day_events(sorted(SAMPLE.iterdir()), SequencerConfig()).events


@pytest.mark.parametrize("key, value", [("target_mode", "median_ladder"), ("max_target_pct", 150),
                                        ("promotion_days", 0)])
def test_neutral_keys_on_the_real_data(sample_events, key, value):
    base = SequencerConfig()
    changed = dataclasses.replace(base, **{key: value})
    decisions = []
    replay_events(sample_events, changed, on_decision=decisions.append)
    base_decisions = []
    replay_events(sample_events, base, on_decision=base_decisions.append)
    # The key does change the fold (so the check below is not empty) ...
    assert decisions != base_decisions
    # ... but no trade projection.
    assert projections(sample_events, changed) == projections(sample_events, base)


@pytest.mark.parametrize("key, value", [("depth", 9), ("median_position", 5), ("time_change", False),
                                        ("no_trade_on_low_median", False), ("start_slot", "08:00")])
def test_other_keys_change_trades_on_the_real_data(sample_events, key, value):
    changed = dataclasses.replace(SequencerConfig(), **{key: value})
    assert projections(sample_events, changed) != projections(sample_events, SequencerConfig())


def test_points_group_by_fold_then_by_rules():
    def point(index, rules, **changes):
        return SweepPoint(index, (), dataclasses.replace(SequencerConfig(), **changes), rules)

    points = [point(0, "a", target_mode="base"), point(1, "b", target_mode="base"),
              point(2, "a", depth=9), point(3, "a", target_mode="median_ladder", promotion_days=1),
              point(4, "b", max_target_pct=200)]
    groups = group_points(points)
    assert [[[p.index for p in rules] for rules in g.rule_groups] for g in groups] == [
        [[0, 3], [1, 4]], [[2]]]
    assert groups[1].config == fold_config(dataclasses.replace(SequencerConfig(), depth=9))
