"""The worked examples of docs/reference.md, worked by hand there, hold for the code.

If the fold changes, these fail and the reference must be corrected with it.
"""

import datetime as dt

from sequencer.domain import SequencerConfig, apply_day, initial_state, parse_day_event

PEAKS_0730 = [12, 14, 18, 22, 15, 11, 20, 25, 17, 16, 13, 19, 21, 30]


def _weekdays(start: dt.date, count: int) -> list[str]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day.isoformat())
        day += dt.timedelta(days=1)
    return days


def _fold_example():
    config = SequencerConfig()
    state = initial_state("ES1", config)
    decisions = []
    for index, (date, peak) in enumerate(zip(_weekdays(dt.date(2025, 1, 6), 14), PEAKS_0730)):
        result = "Loss" if index == 13 else "Win"
        event = parse_day_event({"stream": "ES1", "date": date, "slots": {
            "07:30": {"result": result, "peak": peak},
            "08:00": {"result": "BE", "peak": 5},
            "09:00": {"result": "Win", "peak": 9},
        }}, config)
        state, decision = apply_day(state, event, config)
        decisions.append(decision)
    return state, decisions


def test_warm_up_then_full_window_then_a_loss_moves_the_slot():
    state, decisions = _fold_example()
    day1, day12, day13, day14 = decisions[0], decisions[11], decisions[12], decisions[13]
    assert day1.date == "2025-01-06" and day13.date == "2025-01-22" and day14.date == "2025-01-23"

    assert dict(day1.slot_sums) == {"07:30": 1, "08:00": 0, "09:00": 1}
    assert (day1.rolling_median, day1.rolling_median_target, day1.ladder_step, day1.days_at_level) == (None, 10, 0, 1)
    assert (day12.rolling_median, day12.ladder_step, day12.days_at_level) == (None, 0, 12)

    assert dict(day13.slot_sums) == {"07:30": 13, "08:00": 0, "09:00": 13}
    assert day13.rolling_median == 17
    assert (day13.rolling_median_target, day13.median_ladder_target) == (15, 15)
    assert (day13.ladder_step, day13.days_at_level, day13.next_slot) == (1, 1, "07:30")

    assert day14.result == "Loss" and day14.traded_slot == "07:30"
    assert dict(day14.slot_sums) == {"07:30": 10, "08:00": 0, "09:00": 13}
    assert day14.next_slot == "09:00" and day14.time_change
    assert day14.time_reason == "Loss at 07:30 (sum 10): switch to 09:00 (sum 13)"
    assert day14.rolling_median == 18
    assert (day14.rolling_median_target, day14.ladder_step, day14.days_at_level) == (15, 1, 2)
    assert state.current_time == "09:00"
    assert state.rolling_median_window[0] == 14 and state.rolling_median_window[-1] == 30
