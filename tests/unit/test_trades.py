"""SPEC 8.1: the trade each decision records, ``point_value`` per instrument,
and that neither changes a state or ``config_id`` (a checkpoint written
before trades existed keeps loading)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest

from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.cli.main import main
from sequencer.adapters.files.config_file import load_config, load_rules
from sequencer.domain import (
    DEFAULT_INSTRUMENTS,
    NO_RULES,
    ConfigError,
    SequencerConfig,
    TradeRules,
    apply_day,
    initial_state,
    parse_day_event,
)

DEFAULT = SequencerConfig()
SMALL = SequencerConfig(depth=3, median_position=2)
FIXTURES = Path(__file__).parent / "data" / "checkpoint_before_trades"


def d(i: int) -> str:
    return (dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat()


def run(config, days, stream="ES1"):
    state = initial_state(stream, config)
    decisions = []
    for i, slots in enumerate(days):
        state, decision = apply_day(state, parse_day_event({"stream": stream, "date": d(i), "slots": slots},
                                                           config), config)
        decisions.append(decision)
    return state, decisions


def trade(decision):
    return decision.traded, decision.profit, decision.profit_usd


def test_the_traded_slot_with_its_recorded_profit_times_the_point_value():
    # ES point value 50 (SPEC 8.1). Day 0 trades the start slot 07:30.
    _, (first,) = run(DEFAULT, [{"07:30": {"result": "Win", "profit": 10}, "08:00": {"result": "Loss", "profit": -10}}])
    assert first.traded_slot == "07:30"
    assert trade(first) == (True, 10.0, 500.0)
    assert isinstance(first.profit, float)


def test_no_outcome_for_the_traded_slot_is_no_trade():
    _, (first,) = run(DEFAULT, [{"08:00": {"result": "Win", "profit": 10}}])
    assert trade(first) == (False, 0.0, 0.0)


def test_an_outcome_without_profit_is_a_trade_of_zero():
    _, (first,) = run(DEFAULT, [{"07:30": {"result": "Win"}}])
    assert trade(first) == (True, 0.0, 0.0)


def test_notrade_result_is_a_trade_with_its_recorded_profit():
    _, (first,) = run(DEFAULT, [{"07:30": {"result": "NoTrade", "profit": -0.25}}])
    assert trade(first) == (True, -0.25, -12.5)


def test_no_trade_next_of_the_state_before_the_day_means_not_traded():
    # depth 3: peaks 4, 4, 4 fill the window, median 4 < base 10 -> no_trade_next after day 2.
    # (BE, not Loss: a loss would move the stream to another slot.)
    low = {"07:30": {"result": "BE", "peak": 4, "profit": -1}}
    _, decisions = run(SMALL, [low, low, low, {"07:30": {"result": "Win", "peak": 30, "profit": 10}}])
    # day 3: window 4, 4, 30, median still 4: no trade next again
    assert [dec.no_trade_next for dec in decisions] == [False, False, True, True]
    assert [dec.traded for dec in decisions] == [True, True, True, False]   # day 3 uses day 2's state
    assert trade(decisions[3]) == (False, 0.0, 0.0)


def test_profit_usd_is_rounded_to_ten_decimals():
    # CL point value 1000: -0.41 * 1000 is -409.99999999999994 in binary floating point.
    _, (first,) = run(DEFAULT, [{"07:30": {"result": "Loss", "profit": -0.41}}], stream="CL1")
    assert first.profit_usd == -410.0


def test_default_point_values_are_spec_8_1():
    assert {name: spec.point_value for name, spec in DEFAULT_INSTRUMENTS.items()} == {
        "ES": 50.0, "NQ": 10.0, "YM": 5.0, "CL": 1000.0, "GC": 100.0, "NG": 10000.0}


def test_point_value_from_the_config_file_changes_dollars_not_config_id(tmp_path: Path):
    with_value = tmp_path / "a.toml"
    with_value.write_text("[instruments.ES]\nbase = 10\nincrement = 5\ntick = 0.25\npoint_value = 20\n")
    without = tmp_path / "b.toml"
    without.write_text("[instruments.ES]\nbase = 10\nincrement = 5\ntick = 0.25\n")
    config = load_config(with_value)
    assert config.instruments["ES"].point_value == 20.0
    assert load_config(without).instruments["ES"].point_value == 50.0    # ES keeps SPEC 8.1's value
    assert config.config_id == load_config(without).config_id
    _, (first,) = run(config, [{"07:30": {"result": "Win", "profit": 10}}])
    assert first.profit_usd == 200.0
    state_a, _ = run(config, [{"07:30": {"result": "Win", "profit": 10, "peak": 12}}])
    state_b, _ = run(load_config(without), [{"07:30": {"result": "Win", "profit": 10, "peak": 12}}])
    assert state_a == state_b


def test_default_config_id_is_unchanged_by_point_values():
    # The id every tool computes from SPEC 2 alone (README).
    assert DEFAULT.config_id == "6ce95a1916d4"
    other = SequencerConfig.from_mapping({"instruments": {
        name: {"base": s.base, "increment": s.increment, "tick": s.tick, "point_value": 1}
        for name, s in DEFAULT_INSTRUMENTS.items()}})
    assert other.config_id == "6ce95a1916d4"


@pytest.mark.parametrize("value", [0, -50, "50", True, float("inf")])
def test_bad_point_value_is_refused_naming_it(value):
    with pytest.raises(ConfigError, match=r"instrument ES: point_value must be a positive number"):
        SequencerConfig.from_mapping({"instruments": {"ES": {"base": 10, "increment": 5, "tick": 0.25,
                                                             "point_value": value}}})


def test_unknown_instrument_key_is_refused():
    with pytest.raises(ConfigError, match="instrument ES: unknown keys pointvalue"):
        SequencerConfig.from_mapping({"instruments": {"ES": {"base": 10, "increment": 5, "tick": 0.25,
                                                             "pointvalue": 20}}})


# --- rules in the config file or a rules file ----------------------------------------------


def test_rules_table_of_the_config_file_is_not_part_of_the_config(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text('target_mode = "median_ladder"\n[rules]\nskip_weekdays = ["Mon"]\nskip_after_loss = true\n')
    assert load_config(path) == SequencerConfig(target_mode="median_ladder")
    assert load_rules(path) == TradeRules(skip_weekdays=("Mon",), skip_after_loss=True)
    json_path = tmp_path / "c.json"
    json_path.write_text('{"target_mode": "median_ladder", "rules": {"min_slot_sum": -4}}')
    assert load_config(json_path).config_id == load_config(path).config_id
    assert load_rules(json_path) == TradeRules(min_slot_sum=-4)
    assert load_rules(None, None) == NO_RULES


def test_a_rules_file_replaces_the_config_files_table(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text('[rules]\nskip_weekdays = ["Mon"]\n')
    rules = tmp_path / "r.toml"
    rules.write_text("skip_days_of_month = [1]\n")
    assert load_rules(config, rules) == TradeRules(skip_days_of_month=(1,))


def test_bad_rules_in_a_file_name_the_file_key_and_value(tmp_path: Path):
    path = tmp_path / "r.json"
    path.write_text('{"skip_weekdays": ["Mon", "Funday"]}')
    with pytest.raises(ConfigError, match=r"rules file .*r.json: rules: skip_weekdays: 'Funday'"):
        load_rules(None, path)
    config = tmp_path / "c.toml"
    config.write_text("[rules]\nmin_slot_sum = \"low\"\n")
    with pytest.raises(ConfigError, match=r"config file .*c.toml: rules: min_slot_sum must be a number or null, got 'low'"):
        load_rules(config)


# --- a checkpoint written before this change ------------------------------------------------


def test_checkpoint_written_before_trades_loads_and_continues_like_a_full_replay(tmp_path: Path):
    """The checkpoint was written by the code before SPEC 8 (commit 0f906dc) from the
    2025-01..03 rows of the fixture CSV; resuming from it over 04..05 must give the
    state and decisions of one replay of all five months."""
    rows = (FIXTURES / "es1_2025_jan_may.csv").read_text().splitlines()
    head, body = rows[0], rows[1:]
    tail = tmp_path / "tail.csv"
    tail.write_text("\n".join([head] + [r for r in body if r >= "2025-04"]) + "\n")
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    shutil.copy(FIXTURES / "state_ES_ES1.json", state_dir / "state_ES_ES1.json")
    assert json.loads((FIXTURES / "state_ES_ES1.json").read_text())["last_processed_date"] == "2025-03-31"

    store = CheckpointStore(state_dir, DEFAULT)
    assert store.load("ES1", "ES") is not None   # same config_id: not refused

    assert main(["replay", str(tail), "--out", str(tmp_path / "resumed"), "--state-dir", str(state_dir),
                 "--resume"]) == 0
    assert main(["replay", str(FIXTURES / "es1_2025_jan_may.csv"), "--out", str(tmp_path / "full"),
                 "--state-dir", str(tmp_path / "full_state")]) == 0

    def decisions(folder):
        with (folder / "decisions.csv").open() as handle:
            return list(csv.DictReader(handle))

    full = [row for row in decisions(tmp_path / "full") if row["date"] >= "2025-04"]
    resumed = decisions(tmp_path / "resumed")
    assert resumed and resumed == full
    assert {"traded", "profit", "profit_usd"} <= set(resumed[0])

    def state(folder):
        doc = json.loads((folder / "state_ES_ES1.json").read_text())
        doc.pop("saved_at")
        return doc

    assert state(state_dir) == state(tmp_path / "full_state")
