"""The sweep's grid: ``--grid KEY=V1,V2`` parsing, validation and the cartesian product."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sequencer.domain import ConfigError, SequencerConfig
from sequencer.app.sweep.grid import format_value, parse_grid_argument, parse_value, plan_grid

BASE = SequencerConfig()


def plain_rules(mapping: Mapping[str, Any]) -> dict:
    """A stand-in for the trade rules: accepts one key, refuses the rest."""
    unknown = set(mapping) - {"skip_after_loss", "skip_weekdays"}
    if unknown:
        raise ConfigError(f"unknown rule {sorted(unknown)[0]}")
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in mapping.items()))


def plan(*arguments: str, base: SequencerConfig = BASE):
    axes = [parse_grid_argument(a, list_rule_keys=["skip_weekdays"]) for a in arguments]
    return plan_grid(axes, base, {}, plain_rules)


def test_values_are_read_as_each_key_needs():
    assert parse_grid_argument("depth=9, 13,17").values == (9, 13, 17)
    assert parse_grid_argument("time_change=true,False").values == (True, False)
    assert parse_grid_argument("max_target_pct=200,250.5").values == (200, 250.5)
    assert parse_grid_argument("target_mode=base,median_ladder").values == ("base", "median_ladder")
    assert parse_grid_argument("start_slot=none,08:00").values == (None, "08:00")
    axis = parse_grid_argument("rules.skip_weekdays=Mon+Fri,none,Wed", list_rule_keys=["skip_weekdays"])
    assert axis.values == (("Mon", "Fri"), (), ("Wed",))
    assert axis.is_rule and axis.name == "skip_weekdays"


@pytest.mark.parametrize("argument, message", [
    ("depht=9", "unknown key 'depht'"),
    ("depth", "expected KEY=V1,V2"),
    ("=9", "expected KEY=V1,V2"),
    ("depth=", "non-empty"),
    ("depth=9,,13", "non-empty"),
    ("depth=9,9", "'9' is listed twice"),
    ("instruments=ES", "unknown key 'instruments'"),
])
def test_unknown_keys_and_malformed_arguments_are_refused(argument, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid_argument(argument)


def test_one_and_true_are_different_values():
    assert parse_grid_argument("depth=1,true").values == (1, True)


def test_the_product_is_over_the_base_config_in_grid_order():
    base = dataclasses.replace(BASE, no_trade_on_low_median=False)
    result = plan("depth=9,13", "target_mode=base,median_ladder", "rules.skip_after_loss=true,false",
                  base=base)
    assert [p.values for p in result.points] == [
        (9, "base", True), (9, "base", False), (9, "median_ladder", True), (9, "median_ladder", False),
        (13, "base", True), (13, "base", False), (13, "median_ladder", True), (13, "median_ladder", False)]
    first = result.points[0]
    assert first.config == dataclasses.replace(base, depth=9, target_mode="base")
    assert first.rules == (("skip_after_loss", True),)
    assert [p.index for p in result.points] == list(range(8))
    assert not result.skipped


def test_config_ids_are_those_of_the_same_config_file():
    result = plan("max_target_pct=300.0,250.5")
    assert result.points[0].config == SequencerConfig.from_mapping({"max_target_pct": 300.0})
    assert result.points[0].config.config_id == SequencerConfig(max_target_pct=300).config_id
    assert result.points[1].config.max_target_pct == 250.5


def test_impossible_combinations_are_skipped_with_their_reason():
    result = plan("depth=5,13", "median_position=3,7")
    assert [p.values for p in result.points] == [(5, 3), (13, 3), (13, 7)]
    assert [(s.values, s.reason) for s in result.skipped] == [
        ((5, 7), "median_position 7 is beyond depth 5")]


@pytest.mark.parametrize("arguments, message", [
    (["depth=0,13"], r"depth=0: depth must be an integer >= 1, got 0"),
    (["depth=abc"], r"depth=abc: depth must be an integer"),
    (["depth=9.5"], r"depth=9.5: depth must be an integer"),
    (["time_change=yes"], r"time_change=yes: time_change must be true or false"),
    (["target_mode=ladder"], r"target_mode=ladder: target_mode must be one of"),
    (["max_target_pct=-5"], r"max_target_pct=-5: max_target_pct must be a positive number"),
    (["start_slot=12:00"], r"start_slot=12:00: start_slot '12:00' is not a slot"),
    (["rules.nope=1"], r"rules.nope=1: unknown rule nope"),
    # bad in every combination: depth 5 is below the only median position
    (["depth=5,13", "median_position=7"], r"depth=5: median_position 7 is beyond depth 5"),
])
def test_a_value_bad_in_every_combination_refuses_the_grid(arguments, message):
    with pytest.raises(ConfigError, match=message):
        plan(*arguments)


def test_every_bad_value_is_named_at_once():
    with pytest.raises(ConfigError) as raised:
        plan("depth=0,13", "promotion_days=-1,2")
    assert "depth=0" in str(raised.value) and "promotion_days=-1" in str(raised.value)


def test_only_the_values_failing_on_their_own_are_blamed():
    with pytest.raises(ConfigError) as raised:
        plan("depth=9,13", "start_slot=12:00")
    assert str(raised.value) == "bad grid value: start_slot=12:00: start_slot '12:00' is not a slot of any session"


def test_a_key_given_twice_is_refused():
    with pytest.raises(ConfigError, match="given twice"):
        plan("depth=9", "depth=13")


def test_no_grid_is_the_base_configuration_alone():
    result = plan()
    assert [(p.values, p.config) for p in result.points] == [((), BASE)]


def test_a_grid_too_large_is_refused_before_any_work():
    with pytest.raises(ConfigError, match="more than"):
        plan(*(f"{key}={','.join(str(v) for v in range(1, 12))}"
               for key in ("depth", "median_position", "promotion_days", "max_target_pct", "start_slot")))


cli_values = st.one_of(
    st.booleans(), st.none(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer()),
    st.from_regex(r"[A-Za-z][A-Za-z0-9_:]{0,8}", fullmatch=True).filter(
        lambda s: s.lower() not in ("true", "false", "none", "null", "inf", "nan", "infinity")),
)


@given(cli_values)
def test_a_formatted_value_parses_back_to_itself(value):
    assert parse_value(format_value(value)) == value
    assert type(parse_value(format_value(value))) is type(value)


@given(st.lists(st.one_of(st.integers(1, 31), st.sampled_from(["Mon", "Tue", "Fri"])), max_size=4))
def test_a_formatted_list_parses_back_to_itself(items):
    assert parse_value(format_value(tuple(items)), as_list=True) == tuple(items)


@pytest.mark.parametrize("argument, first, second", [
    ("max_target_pct=400,150,400.0", "400", "400.0"),  # one config_id: two rows of the same metrics
    ("rules.skip_weekdays=Mon+Fri,Fri+Mon", "Mon+Fri", "Fri+Mon"),
    ("rules.skip_weekdays=Mon,mon", "Mon", "mon"),
    ("rules.skip_days_of_month=1+1,1", "1+1", "1"),
])
def test_two_values_that_are_one_configuration_are_refused(argument, first, second):
    # Before, each was a row of its own, ranked side by side with equal metrics.
    from sequencer.domain.trade_rules import TradeRules

    import re

    with pytest.raises(ConfigError, match=re.escape(f"values '{first}' and '{second}' are one configuration; "
                                                    "list it once")):
        plan_grid([parse_grid_argument(argument)], BASE, {}, TradeRules.from_mapping)


def test_values_that_differ_only_in_config_id_or_only_beside_a_bad_one_are_kept():
    from sequencer.domain.trade_rules import TradeRules

    # start_slot 07:30 is the default's slot for S1, but another config_id: two configurations.
    points = plan_grid([parse_grid_argument("start_slot=none,07:30")], BASE, {}, TradeRules.from_mapping).points
    assert len({p.config.config_id for p in points}) == 2
    with pytest.raises(ConfigError, match="bad grid value: depth=0"):
        plan_grid([parse_grid_argument("depth=0,13")], BASE, {}, TradeRules.from_mapping)
