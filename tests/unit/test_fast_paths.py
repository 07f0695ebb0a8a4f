"""The fast paths of the fold, the decision encoder and the report give what
the plain definitions give, bit for bit (issues 14 and 18: trimmed, no output
byte changed).

Each property holds a fast path against the plain code it replaced, written
out here as the reference: the memo tables of the fold (which must tell 10
from 10.0 and 0.0 from -0.0), the shared msgpack packer (also after a failed
pack), and the report's sort-based grouping (a single -0.0 stays -0.0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.app.codecs import encode_decision
from sequencer.domain import DECISION_FIELDS, Decision, StreamState

from tests.unit.test_equivalences import configs, plain_fold, sequences

# The modules, not the functions of the same names that sequencer.domain exports.
fold_module = importlib.import_module("sequencer.domain.fold")
metrics = importlib.import_module("sequencer.domain.metrics")

numbers = st.one_of(st.floats(allow_nan=False), st.integers(-10**6, 10**6),
                    st.sampled_from([0.0, -0.0, 0, 10, 10.0, 1e308, 5e-324]))


def _bits(value):
    return (type(value), struct.pack("<d", value)) if isinstance(value, float) else (type(value), value)


@settings(max_examples=300, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=20))
def test_remembered_float_texts_print_as_an_f_string(values):
    for value in values + values:  # the second time from the table
        assert fold_module._text(value) == f"{value}"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.floats(0, 1e6), st.integers(0, 10**6), st.just(-0.0)),
                          st.sampled_from([0.25, 1.0, 0.01, 0.1, 0.001, 1])), min_size=1, max_size=20))
def test_memoised_floor_of_medians_is_floor_to_increment(pairs):
    for value, increment in pairs + pairs:
        assert _bits(fold_module._floor_median(value, increment)) == _bits(
            fold_module.floor_to_increment(value, increment))


def _old_to_dict(decision: Decision) -> dict:
    doc = {name: getattr(decision, name) for name in DECISION_FIELDS}
    doc["slot_sums"] = dict(decision.slot_sums)
    return doc


@settings(max_examples=60, deadline=None)
@given(sequences())
def test_fold_builds_whole_values_and_the_same_decisions_cold_or_warm(case):
    config, events = case
    fold_module._FLOAT_TEXTS.clear()
    fold_module._floor_median.cache_clear()
    fold_module._stay_reason_of.cache_clear()
    cold_states, cold = plain_fold(events, config)
    warm_states, warm = plain_fold(events, config)  # every memo filled now
    for decision in cold:
        assert type(decision) is Decision and len(decision) == len(DECISION_FIELDS)
    for state in cold_states.values():
        assert type(state) is StreamState and len(state) == len(StreamState._fields)
    assert [msgpack.packb(_old_to_dict(d)) for d in cold] == [msgpack.packb(_old_to_dict(d)) for d in warm]
    assert cold_states == warm_states


@settings(max_examples=60, deadline=None)
@given(sequences())
def test_encode_decision_is_packb_of_every_field(case):
    config, events = case
    _, decisions = plain_fold(events, config)
    for decision in decisions:
        assert decision.to_dict() == _old_to_dict(decision)
        assert list(decision.to_dict()) == list(DECISION_FIELDS)
        assert encode_decision(decision) == msgpack.packb(_old_to_dict(decision), use_bin_type=True)


def test_encode_decision_after_a_failed_pack_is_whole():
    decision = Decision(*([None] * len(DECISION_FIELDS)))._replace(
        stream="ES1", slot_sums={"07:30": 1}, time_reason=object())
    with pytest.raises(TypeError):
        encode_decision(decision)
    good = decision._replace(time_reason="stay")
    assert encode_decision(good) == msgpack.packb(_old_to_dict(good), use_bin_type=True)


def _plain_grouped_sums(dates, values):
    """The definition the report used before: a dict of each date's values."""
    by_date: dict = {}
    for date, value in zip(dates, values):
        by_date.setdefault(date, []).append(value)
    ordered = sorted(by_date.items())
    return [d for d, _ in ordered], [v[0] if len(v) == 1 else math.fsum(v) for _, v in ordered]


day_values = st.lists(st.tuples(st.sampled_from(["2025-01-02", "2025-01-03", "2024-12-31", "2025-02-10"]),
                                st.one_of(st.floats(-1e6, 1e6), st.just(-0.0), st.just(0.0))), max_size=40)


@settings(max_examples=300, deadline=None)
@given(day_values)
def test_day_totals_of_several_streams_are_the_plain_sums(rows):
    dates, values = [d for d, _ in rows], [v for _, v in rows]
    days, totals = metrics._grouped_sums(dates, values)
    plain_days, plain_totals = _plain_grouped_sums(dates, values)
    assert days == plain_days
    assert [struct.pack("<d", t) for t in totals] == [struct.pack("<d", t) for t in plain_totals]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["ES1", "NQ2", "CL1", "ES10"]), max_size=40))
def test_rows_by_stream_are_each_streams_rows_in_order(streams):
    plain: dict = {}
    for row, name in enumerate(streams):
        plain.setdefault(name, []).append(row)
    grouped = metrics._rows_by_stream(streams)
    assert list(grouped) == sorted(plain)
    assert grouped == plain


@settings(max_examples=100, deadline=None)
@given(configs)
def test_config_id_computed_once_is_the_hash_of_the_canonical_config(config):
    blob = json.dumps(config.canonical(), sort_keys=True, separators=(",", ":"))
    assert config.config_id == hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]
    assert dataclasses.replace(config).config_id == config.config_id


def _plain_max_drawdown(day_totals):
    """The definition the report used before: running sums, their running peak from E_0 = 0, the largest gap."""
    from itertools import accumulate
    import operator

    equity = list(accumulate(day_totals))
    peaks = accumulate(equity, max, initial=0.0)
    next(peaks)
    return max(map(operator.sub, peaks, equity), default=0.0) if equity else 0.0


finite_totals = st.lists(st.one_of(st.floats(-1e12, 1e12), st.sampled_from([0.0, -0.0, 500.0, -500.0, 5e-324])),
                         max_size=60)


@settings(max_examples=400, deadline=None)
@given(finite_totals)
def test_max_drawdown_loop_is_the_plain_definition(totals):
    assert struct.pack("<d", metrics._max_drawdown(totals)) == struct.pack("<d", _plain_max_drawdown(totals))


def _plain_sharpe(day_totals):
    """The definition before: null for fewer than 2 dates or when the smallest total is the largest."""
    if len(day_totals) < 2 or min(day_totals) == max(day_totals):
        return None
    mean = math.fsum(day_totals) / len(day_totals)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in day_totals) / (len(day_totals) - 1))
    return mean / std * math.sqrt(252) if std else None


same_totals = st.builds(lambda v, n: [v] * n, st.sampled_from([0.1, -0.0, 0.0, 1e11 / 3, 500.0]), st.integers(0, 30))


@settings(max_examples=300, deadline=None)
@given(st.one_of(finite_totals, same_totals, st.lists(st.sampled_from([0.0, -0.0]), max_size=5)))
def test_sharpe_is_the_plain_definition(totals):
    fast, plain = metrics._sharpe(totals), _plain_sharpe(totals)
    assert (fast is None) == (plain is None)
    if plain is not None:
        assert fast == pytest.approx(plain, rel=1e-12)
