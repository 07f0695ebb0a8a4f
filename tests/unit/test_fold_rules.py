"""The fold's rules (SPEC 5), one small hand-worked example per rule.

Every expected value is worked out by hand from the SPEC; the arithmetic is in
the comments. Instrument figures (SPEC 1): ES base 10, increment 5;
CL base 0.5, increment 0.25; NG base 0.05, increment 0.025.
Ladder rungs r_i = base * (1 + 0.5 i): ES 10, 15, 20, 25, 30, ... , 80 (i = 14).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from sequencer.adapters.files.config_file import load_config
from sequencer.domain import (
    ConfigError,
    Order,
    SequencerConfig,
    apply_day,
    event_order,
    floor_to_increment,
    initial_state,
    parse_day_event,
)

DEFAULT = SequencerConfig()
SMALL = SequencerConfig(depth=3, median_position=2)  # median = 2nd of 3
S1 = ("07:30", "08:00", "09:00")


def d(i: int) -> str:
    """The i-th trading date of the tests (ISO)."""
    return (dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat()


def o(result: str, peak: float | None = None) -> dict:
    out = {"result": result}
    if peak is not None:
        out["peak"] = peak
    return out


def event(date: str, slots: dict, config: SequencerConfig = DEFAULT, stream: str = "ES1"):
    return parse_day_event({"stream": stream, "date": date, "slots": slots}, config)


def run(config: SequencerConfig, days: list[dict], stream: str = "ES1", state=None):
    """Fold ``days`` (slot maps, dated d(0), d(1), ...); returns final state and decisions."""
    state = state or initial_state(stream, config)
    decisions = []
    for i, slots in enumerate(days):
        state, decision = apply_day(state, event(d(i), slots, config, stream), config)
        assert decision is not None
        decisions.append(decision)
    return state, decisions


def peaks_at_0730(*peaks: float) -> list[dict]:
    """Days where the traded slot 07:30 wins with the given peak (no time change)."""
    return [{"07:30": o("Win", p)} for p in peaks]


# --- initial state -----------------------------------------------------------------------


def test_initial_state_is_spec_4():
    s = initial_state("ES1", DEFAULT)
    assert (s.stream, s.instrument, s.session) == ("ES1", "ES", "S1")
    assert s.last_processed_date is None and s.events_applied == 0
    assert s.rolling_median_window == () and s.median_ladder_window == ()
    assert dict(s.time_slot_histories) == {slot: () for slot in S1}
    assert s.current_time == "07:30"  # first slot of S1
    assert s.current_target == s.rolling_median_target == s.median_ladder_target == 10
    assert (s.median_ladder_current_step, s.median_ladder_days_at_level, s.no_trade_next) == (0, 0, False)
    assert initial_state("NQ2", DEFAULT).current_time == "09:30"
    assert initial_state("NQ2", DEFAULT).current_target == 50


def test_start_slot_is_the_first_days_traded_slot():
    config = SequencerConfig(start_slot="08:00")
    state = initial_state("ES1", config)
    assert state.current_time == "08:00"
    _, decision = apply_day(state, event(d(0), {"07:30": o("Win"), "08:00": o("BE")}, config), config)
    assert decision.traded_slot == "08:00" and decision.result == "BE"


# --- warm-up ---------------------------------------------------------------------------


def test_warm_up_keeps_base_targets_and_counts_days():
    # depth 3: the first two peaks only warm up; targets stay at base 10 however
    # high the peaks, days_at_level counts 1, 2 and the step stays 0.
    state, decisions = run(SMALL, peaks_at_0730(40, 50))
    for n, dec in enumerate(decisions, start=1):
        assert dec.rolling_median is None
        assert dec.rolling_median_target == dec.median_ladder_target == dec.next_target == 10
        assert dec.ladder_step == 0 and dec.days_at_level == n
        assert dec.no_trade_next is False
    assert state.rolling_median_window == (40, 50) == state.median_ladder_window
    assert state.median_ladder_days_at_level == 2 and state.median_ladder_current_step == 0


def test_warm_up_clears_no_trade_next():
    # depth 2, position 1: peaks 1, 1 fill the window, m = 1 < base 10 -> the
    # flag is set. A state with the flag set and a short window (what a hand-made
    # or upgraded file may hold) goes through warm-up, which clears the flag.
    config = SequencerConfig(depth=2, median_position=1)
    state, decisions = run(config, peaks_at_0730(1, 1))
    # day 1: window [1, 1] full, m = 1 < 10 -> true
    assert decisions[1].no_trade_next is True and state.no_trade_next is True
    short = state._replace(rolling_median_window=(), median_ladder_window=())
    new, dec = apply_day(short, event(d(5), {"07:30": o("Win", 1)}, config), config)
    assert dec.no_trade_next is False and new.no_trade_next is False


# --- median position and rounding --------------------------------------------------------


def test_median_is_the_ranked_peak_of_the_full_default_window():
    # Default depth 13, median_position 7. Peaks 11..23 in scrambled order;
    # sorted 11, 12, ..., 23 -> 7th = 17.
    peaks = [23, 11, 22, 12, 21, 13, 20, 14, 19, 15, 18, 16, 17]
    state, decisions = run(DEFAULT, peaks_at_0730(*peaks))
    for dec in decisions[:12]:
        assert dec.rolling_median is None and dec.next_target == 10
    last = decisions[12]
    assert last.rolling_median == 17
    # floor_to_increment(17) = floor(17 / 5) * 5 = 3 * 5 = 15; 15 >= base 10, <= cap 40
    assert last.rolling_median_target == 15 == last.next_target == state.current_target
    # ladder: 17 >= r1 = 15, < r2 = 20 -> desired 1 > step 0; days_at_level was
    # 12 (warm-up days) >= promotion_days 2 -> step 1, days 1, target r1 = 15
    assert (last.ladder_step, last.days_at_level, last.median_ladder_target) == (1, 1, 15)
    assert last.no_trade_next is False  # 17 >= 10
    assert list(state.rolling_median_window) == peaks


@pytest.mark.parametrize("position, expected", [(1, 10), (2, 20), (3, 30), (4, 40), (5, 50)])
def test_median_position_is_a_one_based_rank(position, expected):
    # depth 5; peaks 30, 10, 50, 20, 40 sorted: 10, 20, 30, 40, 50
    config = SequencerConfig(depth=5, median_position=position)
    _, decisions = run(config, peaks_at_0730(30, 10, 50, 20, 40))
    assert decisions[-1].rolling_median == expected


def test_median_uses_the_last_depth_peaks_only():
    # depth 3, position 2: windows [12], [12, 30], [12, 30, 22] m 22,
    # [30, 22, 25] m 25, [22, 25, 1] m 22, [25, 1, 1] m 1
    state, decisions = run(SMALL, peaks_at_0730(12, 30, 22, 25, 1, 1))
    assert [dec.rolling_median for dec in decisions] == [None, None, 22, 25, 22, 1]
    assert state.rolling_median_window == (25, 1, 1) == state.median_ladder_window


@pytest.mark.parametrize(
    "instrument, median, expected",
    [
        # CL, increment 0.25: 0.74 / 0.25 = 2.96 -> floor 2 -> 0.5
        ("CL", 0.74, 0.5),
        # 0.76 / 0.25 = 3.04 -> 3 -> 0.75
        ("CL", 0.76, 0.75),
        # float noise just below a multiple: 0.7499999999996 / 0.25 = 2.9999999999984,
        # round(., 9) = 3.0 -> 3 -> 0.75 (a plain floor would give 0.5)
        ("CL", 0.7499999999996, 0.75),
        # 1.0000000001 / 0.25 = 4.0000000004 -> round 9 -> 4.0000000004 -> 4 -> 1.0
        ("CL", 1.0000000001, 1.0),
        # 1.9 / 0.25 = 7.6 -> 7 -> 1.75
        ("CL", 1.9, 1.75),
        # cap: base 0.5 * 400 / 100 = 2.0; 5.3 -> 21 * 0.25 = 5.25 -> capped 2.0
        ("CL", 5.3, 2.0),
        # below base: 0.3 -> 1 * 0.25 = 0.25 -> at least base 0.5
        ("CL", 0.3, 0.5),
        # NG, increment 0.025: 0.075 / 0.025 = 2.9999999999999996 in floats,
        # round 9 -> 3 -> 3 * 0.025 = 0.07500000000000001 -> round 10 -> 0.075
        ("NG", 0.075, 0.075),
        # 0.0999 / 0.025 = 3.996 -> 3 -> 0.075
        ("NG", 0.0999, 0.075),
        # 0.1 / 0.025 = 4 -> 0.1
        ("NG", 0.1, 0.1),
        # cap 0.05 * 4 = 0.2; 0.3 -> 12 * 0.025 = 0.3 -> 0.2
        ("NG", 0.3, 0.2),
    ],
)
def test_rolling_target_floors_to_the_increment(instrument, median, expected):
    config = SequencerConfig(depth=1, median_position=1)
    stream = f"{instrument}1"
    _, decisions = run(config, peaks_at_0730(median), stream=stream)
    assert decisions[0].rolling_median == median
    assert decisions[0].rolling_median_target == expected  # exact: rounded to 10 places


def test_floor_to_increment_formula():
    # floor(round(v / inc, 9)) * inc, rounded to 10 places
    assert floor_to_increment(0.74, 0.25) == 0.5
    assert floor_to_increment(0.7499999999996, 0.25) == 0.75
    assert floor_to_increment(0.075, 0.025) == 0.075
    assert floor_to_increment(17, 5) == 15
    assert floor_to_increment(4.99, 5) == 0


def test_ng_ladder_compares_with_rounded_rungs():
    # NG r1 = 0.05 * 1.5 = 0.07500000000000001 in floats, rounded to 0.075.
    # A median of exactly 0.075 reaches r1 -> desired 1; with promotion_days 0
    # the step rises to 1 at once and the ladder target is r1 = 0.075.
    config = SequencerConfig(depth=1, median_position=1, promotion_days=0)
    _, decisions = run(config, peaks_at_0730(0.075), stream="NG1")
    assert (decisions[0].ladder_step, decisions[0].median_ladder_target) == (1, 0.075)


# --- cap --------------------------------------------------------------------------------


def test_cap_limits_both_targets():
    # max_target_pct 150 -> cap = 10 * 150 / 100 = 15. depth 1 so every day is a
    # full window; promotion_days 0 so each day climbs one rung (desired 14:
    # 100 >= r14 = 80).
    config = SequencerConfig(depth=1, median_position=1, promotion_days=0, max_target_pct=150)
    _, decisions = run(config, peaks_at_0730(100, 100, 100))
    # rolling: floor(100 / 5) * 5 = 100 -> min(100, 15) = 15
    assert [dec.rolling_median_target for dec in decisions] == [15, 15, 15]
    # ladder steps 1, 2, 3 -> r = 15, 20, 25 -> capped 15, 15, 15
    assert [dec.ladder_step for dec in decisions] == [1, 2, 3]
    assert [dec.median_ladder_target for dec in decisions] == [15, 15, 15]


def test_default_cap_is_four_times_base():
    # cap 10 * 400 / 100 = 40; median 100 -> rolling 100 capped to 40
    config = SequencerConfig(depth=1, median_position=1)
    _, decisions = run(config, peaks_at_0730(100))
    assert decisions[0].rolling_median_target == 40


# --- ladder -----------------------------------------------------------------------------


def test_ladder_promotes_one_rung_after_promotion_days_and_demotes_at_once():
    # depth 3, position 2, promotion_days 2. Peaks and windows:
    # day0 12        warm-up, days 1
    # day1 30        warm-up, days 2
    # day2 22  [12,30,22] m 22: desired 2 (22 >= r2 20) > step 0, days 2 >= 2 -> step 1, days 1
    # day3 25  [30,22,25] m 25: desired 3 > 1, days 1 < 2 -> days 2, step 1
    # day4 26  [22,25,26] m 25: desired 3 > 1, days 2 >= 2 -> step 2, days 1
    # day5 27  [25,26,27] m 26: desired 3 > 2, days 1 < 2 -> days 2
    # day6 1   [26,27,1]  m 26: desired 3 > 2, days 2 -> step 3, days 1
    # day7 1   [27,1,1]   m 1:  desired 0 (1 < r0 10) < 3 -> step 0, days 1 at once
    # day8 1   [1,1,1]    m 1:  desired 0 == step 0 -> days 2
    state, decisions = run(SMALL, peaks_at_0730(12, 30, 22, 25, 26, 27, 1, 1, 1))
    steps = [dec.ladder_step for dec in decisions]
    days = [dec.days_at_level for dec in decisions]
    assert steps == [0, 0, 1, 1, 2, 2, 3, 0, 0]
    assert days == [1, 2, 1, 2, 1, 2, 1, 1, 2]
    # r_step = 10 (1 + 0.5 step): 10, 10, 15, 15, 20, 20, 25, 10, 10
    assert [dec.median_ladder_target for dec in decisions] == [10, 10, 15, 15, 20, 20, 25, 10, 10]
    assert (state.median_ladder_current_step, state.median_ladder_days_at_level) == (0, 2)


def test_ladder_demotes_to_desired_not_just_one_rung():
    # depth 1, promotion_days 0: 60 -> desired 10 (60 >= r10 = 60), climb 1 per day
    # to step 3; then median 21 -> desired 2 (21 >= 20, < 25): step 2 at once.
    config = SequencerConfig(depth=1, median_position=1, promotion_days=0)
    _, decisions = run(config, peaks_at_0730(60, 60, 60, 21))
    assert [dec.ladder_step for dec in decisions] == [1, 2, 3, 2]
    assert decisions[-1].days_at_level == 1
    assert decisions[-1].median_ladder_target == 20


def test_no_trade_next_when_full_window_median_below_base():
    # depth 3, position 2: [9, 9, 30] m 9 < 10 -> true; [9, 30, 30] m 30 -> false
    _, decisions = run(SMALL, peaks_at_0730(9, 9, 30, 30))
    assert [dec.no_trade_next for dec in decisions] == [False, False, True, False]
    # switched off in the config: never set
    config = SequencerConfig(depth=3, median_position=2, no_trade_on_low_median=False)
    _, decisions = run(config, peaks_at_0730(9, 9, 30))
    assert decisions[-1].no_trade_next is False
    # m exactly base is not below base: [10, 10, 10] m 10
    _, decisions = run(SMALL, peaks_at_0730(10, 10, 10))
    assert decisions[-1].no_trade_next is False


# --- target_mode --------------------------------------------------------------------------


@pytest.mark.parametrize("mode, expected", [("base", 10), ("rolling_median", 20), ("median_ladder", 15)])
def test_target_mode_selects_current_target(mode, expected):
    # depth 3, position 2, peaks 12, 30, 22: m 22 -> rolling floor(22/5)*5 = 20;
    # ladder desired 2, step 0 -> 1 (days 2 >= 2) -> r1 = 15.
    config = SequencerConfig(depth=3, median_position=2, target_mode=mode)
    state, decisions = run(config, peaks_at_0730(12, 30, 22))
    assert decisions[-1].rolling_median_target == 20
    assert decisions[-1].median_ladder_target == 15
    assert decisions[-1].next_target == expected == state.current_target


# --- histories and time change ----------------------------------------------------------


def test_histories_get_one_score_per_slot_and_keep_depth():
    # depth 3; traded 07:30 always wins so nothing switches. 08:00 results
    # Loss, Win, BE, Loss, Win -> scores -2, 1, 0, -2, 1 -> last 3: 0, -2, 1 (sum -1).
    # 09:00 only on day 0 (Win) -> [1]; missing afterwards, no entry.
    results = ["Loss", "Win", "BE", "Loss", "Win"]
    days = [{"07:30": o("Win"), "08:00": o(r)} for r in results]
    days[0]["09:00"] = o("Win")
    state, decisions = run(SMALL, days)
    assert dict(state.time_slot_histories) == {"07:30": (1, 1, 1), "08:00": (0, -2, 1), "09:00": (1,)}
    assert dict(decisions[-1].slot_sums) == {"07:30": 3, "08:00": -1, "09:00": 1}


@pytest.mark.parametrize(
    "spelling, score",
    [("Win", 1), ("Loss", -2), ("BE", 0), ("BREAK_EVEN", 0), ("breakeven", 0), ("NoTrade", 0),
     ("no trade", 0), ("NO_TRADE", 0), ("NOTRADE", 0), ("TIME", 0), ("time", 0), ("WIN", 1), ("loss", -2)],
)
def test_scores(spelling, score):
    state, decisions = run(DEFAULT, [{"08:00": o(spelling)}])
    assert state.time_slot_histories["08:00"] == (score,)
    assert decisions[0].slot_sums["08:00"] == score


def test_slot_sums_are_after_todays_scores():
    # day 0: 07:30 Loss (-2), 08:00 Win (1), 09:00 missing (sum of [] = 0)
    _, decisions = run(DEFAULT, [{"07:30": o("Loss"), "08:00": o("Win")}])
    assert dict(decisions[0].slot_sums) == {"07:30": -2, "08:00": 1, "09:00": 0}


def test_loss_switches_to_the_best_other_slot_earliest_on_ties():
    # traded 07:30 Loss: sums 07:30 -2, 08:00 1, 09:00 1; best other 08:00 (tie
    # with 09:00, earlier in session order); 1 > -2 -> switch.
    state, decisions = run(DEFAULT, [{"07:30": o("Loss"), "08:00": o("Win"), "09:00": o("Win")}])
    dec = decisions[0]
    assert dec.traded_slot == "07:30" and dec.result == "Loss"
    assert dec.time_change is True and dec.next_slot == "08:00" == state.current_time
    assert dec.time_reason


def test_tie_break_follows_session_order_not_event_order():
    # Same as above but the event lists 09:00 before 08:00 -> still 08:00.
    ev = parse_day_event({"stream": "ES1", "date": d(0), "slots": {
        "09:00": o("Win"), "08:00": o("Win"), "07:30": o("Loss")}}, DEFAULT)
    state, dec = apply_day(initial_state("ES1", DEFAULT), ev, DEFAULT)
    assert dec.next_slot == "08:00"


def test_tie_break_later_slot_wins_when_strictly_higher():
    # 08:00 BE (0), 09:00 Win (1) -> 09:00 has the highest sum -> switch there
    _, decisions = run(DEFAULT, [{"07:30": o("Loss"), "08:00": o("BE"), "09:00": o("Win")}])
    assert decisions[0].next_slot == "09:00"


def test_loss_stays_when_best_other_is_not_strictly_higher():
    # day 0: 07:30 Win (1), 08:00 Win (1), 09:00 BE (0): no loss, stay at 07:30.
    # day 1: 07:30 Loss -> [1, -2] = -1; 08:00 Loss -> [1, -2] = -1;
    #        09:00 Loss -> [0, -2] = -2. cur -1, best other 08:00 -1, not > -1 -> stay.
    state, decisions = run(DEFAULT, [
        {"07:30": o("Win"), "08:00": o("Win"), "09:00": o("BE")},
        {"07:30": o("Loss"), "08:00": o("Loss"), "09:00": o("Loss")},
    ])
    assert decisions[1].result == "Loss"
    assert decisions[1].time_change is False and decisions[1].next_slot == "07:30" == state.current_time


def test_loss_stays_when_all_others_are_lower():
    # 07:30 Loss sum -2; 08:00 Loss -2; 09:00 Loss -2 -> equal, stay
    _, decisions = run(DEFAULT, [{"07:30": o("Loss"), "08:00": o("Loss"), "09:00": o("Loss")}])
    assert decisions[0].next_slot == "07:30" and decisions[0].time_change is False


@pytest.mark.parametrize("result", ["Win", "BE", "NoTrade", "TIME", "BREAK_EVEN", "no trade"])
def test_no_time_change_unless_traded_slot_lost(result):
    # the other slots are far better (sum 1 vs the traded slot's 0 or 1) but
    # only a Loss on the traded slot may switch
    _, decisions = run(DEFAULT, [{"07:30": o(result), "08:00": o("Win"), "09:00": o("Win")}])
    assert decisions[0].time_change is False and decisions[0].next_slot == "07:30"


def test_loss_on_another_slot_does_not_switch():
    # traded 07:30 Win; 08:00 Loss; 09:00 Win -> stay
    _, decisions = run(DEFAULT, [{"07:30": o("Win"), "08:00": o("Loss"), "09:00": o("Win")}])
    assert decisions[0].next_slot == "07:30"


def test_time_change_disabled():
    config = SequencerConfig(time_change=False)
    state, decisions = run(config, [{"07:30": o("Loss"), "08:00": o("Win"), "09:00": o("Win")}])
    assert decisions[0].time_change is False and state.current_time == "07:30"
    # histories are still kept: 07:30 [-2], 08:00 [1], 09:00 [1]
    assert dict(decisions[0].slot_sums) == {"07:30": -2, "08:00": 1, "09:00": 1}


def test_switch_then_trade_the_new_slot_next_day():
    # day 0: 07:30 Loss -> switch to 08:00 (sum 1). day 1: traded 08:00 (Loss):
    # sums 07:30 [-2, 1] = -1, 08:00 [1, -2] = -1, 09:00 [0, 1] = 1 -> 09:00 (1 > -1)
    _, decisions = run(DEFAULT, [
        {"07:30": o("Loss"), "08:00": o("Win"), "09:00": o("BE")},
        {"07:30": o("Win"), "08:00": o("Loss"), "09:00": o("Win")},
    ])
    assert [dec.traded_slot for dec in decisions] == ["07:30", "08:00"]
    assert [dec.next_slot for dec in decisions] == ["08:00", "09:00"]


def test_targets_use_the_traded_slots_peak_not_the_new_slots():
    # traded 07:30 Loss peak 5 switches to 08:00 (peak 99): the window gets 5
    state, decisions = run(SMALL, [{"07:30": o("Loss", 5), "08:00": o("Win", 99)}])
    assert decisions[0].peak == 5 and state.rolling_median_window == (5,)
    assert decisions[0].next_slot == "08:00"


def test_time_change_in_a_four_slot_session():
    # NQ2, S2 slots 09:30 10:00 10:30 11:00. traded 09:30 Loss (-2);
    # 10:00 BE 0, 10:30 Win 1, 11:00 Win 1 -> 10:30 (first of the tied 1s)
    _, decisions = run(DEFAULT, [{"09:30": o("Loss"), "10:00": o("BE"), "10:30": o("Win"),
                                  "11:00": o("Win")}], stream="NQ2")
    assert decisions[0].next_slot == "10:30"


# --- missing slot / missing peak ---------------------------------------------------------


def full_small_state():
    """depth 3 state with a full window [9, 9, 9] (m 9 < 10: no_trade_next), step 0."""
    state, decisions = run(SMALL, peaks_at_0730(9, 9, 9))
    assert state.no_trade_next is True
    return state


def test_missing_traded_slot_changes_no_target_and_no_slot():
    state = full_small_state()
    # 07:30 absent; 08:00 and 09:00 win with peaks -> no time change, targets unchanged
    ev = event(d(10), {"08:00": o("Win", 50), "09:00": o("Win", 50)}, SMALL)
    new, dec = apply_day(state, ev, SMALL)
    assert dec.traded_slot == "07:30" and dec.result is None and dec.peak is None
    assert dec.time_change is False and new.current_time == "07:30"
    assert dec.rolling_median is None
    assert new.rolling_median_window == state.rolling_median_window == (9, 9, 9)
    assert new.median_ladder_window == state.median_ladder_window
    assert (new.rolling_median_target, new.median_ladder_target, new.current_target) == (
        state.rolling_median_target, state.median_ladder_target, state.current_target)
    assert (new.median_ladder_current_step, new.median_ladder_days_at_level) == (
        state.median_ladder_current_step, state.median_ladder_days_at_level)
    assert new.no_trade_next is True  # unchanged
    # histories: 07:30 gets no entry, the others one each
    assert new.time_slot_histories["07:30"] == state.time_slot_histories["07:30"]
    assert new.time_slot_histories["08:00"] == (1,)
    # still applied
    assert new.last_processed_date == d(10) and new.events_applied == state.events_applied + 1


def test_missing_peak_keeps_windows_targets_step_and_days():
    state = full_small_state()
    days_before = state.median_ladder_days_at_level
    for slots in ({"07:30": o("BE")}, {"07:30": {"result": "BE", "peak": None}}):
        new, dec = apply_day(state, event(d(10), slots, SMALL), SMALL)
        assert dec.peak is None and dec.rolling_median is None
        assert new.rolling_median_window == (9, 9, 9)
        assert new.median_ladder_days_at_level == days_before
        assert new.median_ladder_current_step == state.median_ladder_current_step
        assert new.rolling_median_target == state.rolling_median_target
        assert new.no_trade_next is True
        # history [1, 1, 1] + BE 0 -> last 3: [1, 1, 0]
        assert new.time_slot_histories["07:30"] == (1, 1, 0)


def test_missing_peak_on_a_loss_still_switches():
    _, decisions = run(SMALL, [{"07:30": o("Loss"), "08:00": o("Win", 30)}])
    assert decisions[0].next_slot == "08:00" and decisions[0].peak is None
    assert decisions[0].rolling_median_target == 10


def test_an_empty_day_is_applied_and_changes_only_date_and_count():
    state = full_small_state()
    new, dec = apply_day(state, event(d(10), {}, SMALL), SMALL)
    assert dec is not None
    assert new == state._replace(last_processed_date=d(10), events_applied=state.events_applied + 1)


# --- duplicates and out-of-order ---------------------------------------------------------


def test_duplicate_and_out_of_order_dates_are_not_applied():
    state, _ = run(DEFAULT, [{"07:30": o("Win", 12)}, {"07:30": o("Win", 13)}])  # d(0), d(1)
    assert state.last_processed_date == d(1)
    # same date again, different content: duplicate
    dup = event(d(1), {"07:30": o("Loss", 99), "08:00": o("Win")})
    new, dec = apply_day(state, dup, DEFAULT)
    assert dec is None and new == state
    assert event_order(state, dup.date) is Order.DUPLICATE
    # an earlier date: out of order
    old = event(d(0), {"07:30": o("Loss", 1)})
    new, dec = apply_day(state, old, DEFAULT)
    assert dec is None and new == state
    assert event_order(state, old.date) is Order.OUT_OF_ORDER
    assert event_order(state, d(2)) is Order.NEW
    assert event_order(initial_state("ES1", DEFAULT), d(0)) is Order.NEW


def test_dates_may_skip_days():
    state, _ = run(DEFAULT, [{"07:30": o("Win")}])
    new, dec = apply_day(state, event("2025-03-01", {"07:30": o("Win")}), DEFAULT)
    assert dec.date == "2025-03-01" and new.events_applied == 2


# --- the decision -------------------------------------------------------------------------


def test_decision_fields_for_a_full_window_day():
    # depth 3, position 2; day 2: 07:30 Loss peak 22, 08:00 Win -> window [12, 30, 22]
    # m 22; sums 07:30 [1, 1, -2] = 0, 08:00 [1] = 1 -> switch to 08:00 (1 > 0)
    days = [{"07:30": o("Win", 12)}, {"07:30": o("Win", 30)},
            {"07:30": o("Loss", 22), "08:00": o("Win")}]
    _, decisions = run(SMALL, days)
    doc = decisions[-1].to_dict()
    assert list(doc) == [
        "stream", "instrument", "date", "traded_slot", "result", "peak", "slot_sums",
        "time_change", "next_slot", "rolling_median", "rolling_median_target",
        "median_ladder_target", "ladder_step", "days_at_level", "next_target", "no_trade_next",
        "time_reason", "target_reason", "traded", "profit", "profit_usd",
    ]
    expected = {
        "stream": "ES1", "instrument": "ES", "date": d(2), "traded_slot": "07:30",
        "result": "Loss", "peak": 22, "slot_sums": {"07:30": 0, "08:00": 1, "09:00": 0},
        "time_change": True, "next_slot": "08:00", "rolling_median": 22,
        "rolling_median_target": 20, "median_ladder_target": 15, "ladder_step": 1,
        "days_at_level": 1, "next_target": 20, "no_trade_next": False,
    }
    assert {k: doc[k] for k in expected} == expected
    assert isinstance(doc["time_reason"], str) and doc["time_reason"]
    assert isinstance(doc["target_reason"], str) and doc["target_reason"]


def test_state_after_the_fold_counts_and_dates():
    state, _ = run(DEFAULT, [{"07:30": o("Win")}] * 4)
    assert state.events_applied == 4 and state.last_processed_date == d(3)


def test_fold_is_pure():
    state = initial_state("ES1", SMALL)
    ev = event(d(0), {"07:30": o("Loss", 12), "08:00": o("Win")}, SMALL)
    a = apply_day(state, ev, SMALL)
    b = apply_day(state, ev, SMALL)
    assert a == b
    assert state == initial_state("ES1", SMALL)  # the input state is untouched


# --- config_id and config files ------------------------------------------------------------

SPEC2_DEFAULTS = {
    "depth": 13, "median_position": 7, "promotion_days": 2, "max_target_pct": 400,
    "target_mode": "rolling_median", "time_change": True, "no_trade_on_low_median": True,
    "start_slot": None,
}


def spec_config_id(values: dict) -> str:
    blob = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def test_default_config_id_from_spec_2():
    expected = spec_config_id(SPEC2_DEFAULTS)
    assert len(expected) == 12
    assert SequencerConfig().config_id == expected
    assert initial_state("ES1", DEFAULT).config_id == expected


def test_config_id_changes_with_every_key():
    ids = {SequencerConfig().config_id}
    for change in ({"depth": 12}, {"median_position": 6}, {"promotion_days": 3},
                   {"max_target_pct": 300}, {"target_mode": "base"}, {"time_change": False},
                   {"no_trade_on_low_median": False}, {"start_slot": "08:00"}):
        config = SequencerConfig(**change)
        assert config.config_id == spec_config_id({**SPEC2_DEFAULTS, **change})
        ids.add(config.config_id)
    assert len(ids) == 9


def test_config_from_json_and_toml_files(tmp_path: Path):
    values = {"depth": 5, "median_position": 3, "target_mode": "median_ladder", "time_change": False}
    json_file = tmp_path / "fast.json"
    json_file.write_text(json.dumps(values))
    toml_file = tmp_path / "fast.toml"
    toml_file.write_text('depth = 5\nmedian_position = 3\ntarget_mode = "median_ladder"\ntime_change = false\n')
    expected_id = spec_config_id({**SPEC2_DEFAULTS, **values})
    for path in (json_file, toml_file):
        config = load_config(path)
        assert (config.depth, config.median_position, config.target_mode, config.time_change) == (
            5, 3, "median_ladder", False)
        assert config.promotion_days == 2 and config.max_target_pct == 400
        assert config.config_id == expected_id
    assert load_config(None) == SequencerConfig()


def test_config_file_max_target_pct_as_float_keeps_the_id(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text("max_target_pct = 400.0\n")
    assert load_config(path).config_id == spec_config_id(SPEC2_DEFAULTS)


@pytest.mark.parametrize(
    "text, word",
    [
        ('{"dept": 5}', "dept"),
        ('{"depth": 5, "colour": "red"}', "colour"),
        ('{"target_mode": "moon"}', "target_mode"),
        ('{"depth": 0}', "depth"),
        ('{"depth": "13"}', "depth"),
        ('{"median_position": 14}', "median_position"),
        ('{"time_change": "yes"}', "time_change"),
        ('{"max_target_pct": -5}', "max_target_pct"),
        ('{"start_slot": "12:34"}', "start_slot"),
        ('[1, 2]', "table"),
        ('{"sessions": {"S1": 5}}', "S1"),
        ('{"sessions": {"S1": "07:30"}}', "S1"),
        ('{"sessions": {"S1": ["7h30"]}}', "7h30"),
        ('{"sessions": {"S1": ["07:30", "07:30"]}}', "07:30"),
        ('{"instruments": ["ES"]}', "instruments"),
        ('{"instruments": {"ES": {"base": 10, "increment": 5}}}', "tick"),
        ("{not json", "JSON"),
    ],
)
def test_bad_config_files_are_refused(tmp_path: Path, text, word):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert word in str(info.value) and str(path) in str(info.value)


def test_bad_toml_key_refused(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text("depth = 5\nmedain_position = 3\n")
    with pytest.raises(ConfigError, match="medain_position"):
        load_config(path)


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="nope.json"):
        load_config(tmp_path / "nope.json")


def test_sessions_from_a_config_file(tmp_path: Path):
    path = tmp_path / "sessions.json"
    path.write_text('{"sessions": {"S1": ["7:30", "08:00"], "S3": ["13:00", "13:30"]}}')
    config = load_config(path)
    assert dict(config.sessions) == {"S1": ("07:30", "08:00"), "S3": ("13:00", "13:30")}
    assert config.config_id != SequencerConfig().config_id  # sessions join the id when not default
    # a stream of the new session: 13:00 Loss (-2), 13:30 Win (1) -> switch to 13:30
    state, decisions = run(config, [{"13:00": o("Loss"), "13:30": o("Win")}], stream="ES3")
    assert decisions[0].next_slot == "13:30" and state.session == "S3"


def test_the_ladder_rungs_cap_and_median_have_one_definition_the_ui_shares():
    from sequencer.domain import SequencerConfig
    from sequencer.domain.fold import ladder_rung, target_cap, window_median
    from sequencer.ui.data import ladder_summary
    # SPEC 5 step 4 by hand: r_i = base * (1 + 0.5 i); cap = base * max_target_pct / 100.
    assert [ladder_rung(10, i) for i in (0, 1, 2, 14)] == [10, 15, 20, 80]
    assert ladder_rung(0.5, 3) == 1.25
    assert target_cap(10, 300) == 30
    assert window_median([5, 1, 4, 2, 3], 3) == 3
    config = SequencerConfig()
    state = {"instrument": "ES", "median_ladder_current_step": 2, "median_ladder_days_at_level": 1,
             "current_time": "09:00", "current_target": 20, "no_trade_next": False}
    base = config.instruments["ES"].base
    summary = ladder_summary(state, config)
    assert summary["rung"] == base * 2 and summary["cap"] == base * config.max_target_pct / 100


def test_step_zero_compares_a_repeat_only_with_the_applied_event_of_its_date():
    from sequencer.domain.step_zero import step_zero

    state, _ = run(DEFAULT, [{"07:30": o("Win", 10)}, {"07:30": o("Win", 12)}])
    repeat = event(d(1), {"07:30": o("Win", 12)})
    corrected = event(d(1), {"07:30": o("Loss", 12)})
    applied = event(d(1), {"07:30": o("Win", 12)})
    assert step_zero(state, repeat, applied).reason is None  # a duplicate, counted
    assert "different payload" in step_zero(state, corrected, applied).reason  # a correction, reported
    # A last-events value of an earlier day (older than the state) is not the
    # applied event of this date: the repeat is a duplicate, not a "correction".
    stale = event(d(0), {"07:30": o("Win", 10)})
    assert step_zero(state, repeat, stale).reason is None
