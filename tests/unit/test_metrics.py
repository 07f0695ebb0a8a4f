"""SPEC 8.2 trade rules and SPEC 8.3 metrics, by hand on a few days, and as properties.

Every expected figure is worked out by hand in the comments (or, for the
standard deviations, by the ``statistics`` module, which computes them
exactly and independently of the code under test).
"""

from __future__ import annotations

import math
import statistics
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.domain import (
    METRIC_NAMES,
    NO_RULES,
    ConfigError,
    Decision,
    TradeRules,
    performance_report,
    taken_flags,
)

SQRT_252 = math.sqrt(252)


def dec(date: str, result: str | None, profit: float = 0.0, *, traded: bool = True,
        stream: str = "ES1", point_value: float = 50.0, slot: str = "07:30",
        sums: dict | None = None, time_change: bool = False) -> Decision:
    """A decision with the fields the report reads; the rest are plausible fillers."""
    instrument = stream.rstrip("0123456789")
    profit = profit if traded else 0.0
    return Decision(
        stream, instrument, date, slot, result, None,
        MappingProxyType(sums if sums is not None else {slot: 0}), time_change, slot, None,
        10.0, 10.0, 0, 1, 10.0, False, "", "", traded, float(profit), round(profit * point_value, 10))


# ES1, point value 50. 2025-01-06 is a Monday.
#   date        day  result   traded  points  usd
#   2025-01-06  Mon  Loss     yes     -10     -500
#   2025-01-07  Tue  Win      yes      10      500
#   2025-01-08  Wed  Win      yes      10      500
#   2025-01-09  Thu  BE       yes       0        0
#   2025-01-10  Fri  Loss     no        -        0   (no_trade_next was set: not traded)
#   2025-01-13  Mon  Win      yes      20     1000   (time_change)
WEEK = [
    dec("2025-01-06", "Loss", -10),
    dec("2025-01-07", "Win", 10),
    dec("2025-01-08", "Win", 10, slot="08:00"),
    dec("2025-01-09", "BE", 0),
    dec("2025-01-10", "Loss", traded=False),
    dec("2025-01-13", "Win", 20, time_change=True),
]


def test_each_metric_by_hand_on_one_stream():
    m = performance_report(WEEK).streams["ES1"]
    assert (m.days, m.trades, m.wins, m.losses, m.breakevens, m.timeouts, m.no_trades) == (6, 5, 3, 1, 1, 0, 0)
    assert m.time_changes == 1
    assert m.win_rate == 75.0                     # 100 * 3 / (3 + 1): BE excluded
    assert m.total_profit == 30.0                 # -10 + 10 + 10 + 0 + 20
    assert m.total_profit_usd == 1500.0
    assert m.avg_profit_usd == 300.0              # 1500 / 5 trades
    assert m.avg_win_usd == pytest.approx(2000 / 3)   # (500 + 500 + 1000) / 3
    assert m.avg_loss_usd == 500.0
    assert m.risk_reward == pytest.approx((2000 / 3) / 500)
    assert m.profit_factor == 4.0                 # 2000 / 500
    # Equity E: 0, -500, 0, 500, 500, 1500: the first-day loss is the deepest fall from E_0 = 0.
    assert m.max_drawdown_usd == 500.0
    assert m.max_drawdown == 10.0
    # V = -500, 500, 500, 0, 1000; mean 300; deviations -800, 200, 200, -300, 700;
    # squares sum 1,300,000; sample variance / 4 = 325,000.
    assert m.sharpe == pytest.approx(300 / math.sqrt(325_000) * SQRT_252)
    # Downside: only -500: sqrt(250,000 / 5) = sqrt(50,000).
    assert m.sortino == pytest.approx(300 / math.sqrt(50_000) * SQRT_252)
    assert m.calmar == pytest.approx(252 * 300 / 500)   # 151.2


def test_drawdown_measured_from_a_later_peak():
    # E: 0, 500, 1500, 500, 1000, -500: peak 1500, lowest after it -500 -> 2000.
    days = [dec("2025-01-06", "Win", 10), dec("2025-01-07", "Win", 20), dec("2025-01-08", "Loss", -20),
            dec("2025-01-09", "Win", 10), dec("2025-01-10", "Loss", -30)]
    m = performance_report(days).streams["ES1"]
    assert m.max_drawdown_usd == 2000.0 and m.max_drawdown == 40.0


def test_all_streams_over_two_instruments():
    # ES1 (50 $/pt): 01-06 -10 pts = -500, 01-07 +10 = +500.
    # NQ2 (10 $/pt): 01-06 +10 pts = +100, 01-08 -20 = -200.
    # All: V by date = -400, 500, -200; E = 0, -400, 100, -100 -> drawdown 400.
    days = [dec("2025-01-06", "Loss", -10), dec("2025-01-07", "Win", 10),
            dec("2025-01-06", "Win", 10, stream="NQ2", point_value=10, slot="09:30"),
            dec("2025-01-08", "Loss", -20, stream="NQ2", point_value=10, slot="09:30")]
    report = performance_report(days)
    a = report.all
    assert (a.days, a.trades, a.wins, a.losses, a.win_rate) == (4, 4, 2, 2, 50.0)
    assert a.total_profit is None and a.max_drawdown is None   # points of two instruments do not add
    assert a.total_profit_usd == -100.0
    assert a.avg_profit_usd == -25.0
    assert a.avg_win_usd == 300.0                  # mean of 500, 100: per trade, not per date
    assert a.avg_loss_usd == 350.0                 # mean of 500, 200
    assert a.profit_factor == 600 / 700
    assert a.max_drawdown_usd == 400.0
    v = [-400, 500, -200]
    assert a.sharpe == pytest.approx(statistics.mean(v) / statistics.stdev(v) * SQRT_252)
    assert a.sortino == pytest.approx(statistics.mean(v) / math.sqrt((400**2 + 200**2) / 3) * SQRT_252)
    assert a.calmar == pytest.approx(252 * statistics.mean(v) / 400)
    assert report.streams["NQ2"].total_profit == -10.0
    assert report.streams["NQ2"].total_profit_usd == -100.0
    assert list(report.streams) == ["ES1", "NQ2"]


def test_nulls_when_nothing_traded():
    m = performance_report([dec("2025-01-06", "Win", traded=False),
                            dec("2025-01-07", None, traded=False)]).streams["ES1"]
    assert (m.days, m.trades, m.win_rate, m.total_profit_usd, m.avg_profit_usd) == (2, 0, 0.0, 0.0, 0.0)
    assert (m.avg_win_usd, m.avg_loss_usd, m.max_drawdown_usd, m.max_drawdown) == (0.0, 0.0, 0.0, 0.0)
    assert (m.risk_reward, m.profit_factor, m.sharpe, m.sortino, m.calmar) == (None,) * 5


def test_nulls_of_one_date_and_of_no_deviation():
    one = performance_report([dec("2025-01-06", "Loss", -10)]).streams["ES1"]
    assert one.sharpe is None and one.sortino is None       # fewer than 2 dates
    assert one.calmar == pytest.approx(252 * -500 / 500)    # drawdown 500 from E_0 = 0
    assert one.profit_factor == 0.0 and one.risk_reward == 0.0   # no gain over a loss
    flat = performance_report([dec("2025-01-06", "Win", 10), dec("2025-01-07", "Win", 10)]).streams["ES1"]
    assert flat.sharpe is None        # std 0
    assert flat.sortino is None       # no negative day: downside deviation 0
    assert flat.calmar is None        # never below its peak
    assert flat.risk_reward is None and flat.profit_factor is None   # no loss to divide by
    assert flat.win_rate == 100.0


def test_breakevens_and_timeouts_give_win_rate_zero():
    m = performance_report([dec("2025-01-06", "BE"), dec("2025-01-07", "TIME", 2),
                            dec("2025-01-08", "NoTrade")]).streams["ES1"]
    assert (m.trades, m.breakevens, m.timeouts, m.no_trades, m.win_rate) == (3, 1, 1, 1, 0.0)
    assert m.total_profit == 2.0


def test_a_stream_date_given_twice_counts_once():
    report = performance_report(WEEK + WEEK[:2])
    assert report == performance_report(WEEK)


def test_breakdowns_by_weekday_slot_and_year():
    days = WEEK + [dec("2026-01-05", "Loss", -5)]   # a Monday of the next year
    by = performance_report(days).by["ES1"]
    assert list(by["weekday"]) == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    mon = by["weekday"]["Mon"]   # 2025-01-06 Loss -500, 2025-01-13 Win +1000, 2026-01-05 Loss -250
    assert (mon.trades, mon.wins, mon.losses, mon.total_profit_usd) == (3, 1, 2, 250.0)
    assert mon.win_rate == pytest.approx(100 / 3)
    fri = by["weekday"]["Fri"]   # a decision, not traded
    assert (fri.trades, fri.wins, fri.losses, fri.win_rate, fri.total_profit_usd) == (0, 0, 0, 0.0, 0.0)
    assert list(by["slot"]) == ["07:30", "08:00"]
    assert by["slot"]["08:00"].total_profit_usd == 500.0
    assert {y: b.trades for y, b in by["year"].items()} == {"2025": 5, "2026": 1}
    assert performance_report(days).by["all"] == by   # one stream: all is the stream


def test_json_shape():
    doc = performance_report(WEEK, TradeRules(skip_weekdays=("Mon",))).to_dict()
    assert list(doc) == ["rules", "streams", "all", "by"]
    assert doc["rules"] == {"skip_weekdays": ["Mon"], "skip_days_of_month": [], "skip_after_loss": False,
                            "min_slot_sum": None}
    assert list(doc["streams"]["ES1"]) == list(METRIC_NAMES) == [
        "days", "trades", "wins", "losses", "breakevens", "timeouts", "no_trades", "time_changes",
        "win_rate", "total_profit", "total_profit_usd", "avg_profit_usd", "avg_win_usd", "avg_loss_usd",
        "risk_reward", "profit_factor", "max_drawdown_usd", "max_drawdown", "sharpe", "sortino", "calmar"]
    assert list(doc["by"]) == ["all", "ES1"]
    assert list(doc["by"]["ES1"]) == ["weekday", "slot", "year"]
    assert list(doc["by"]["all"]["year"]["2025"]) == ["trades", "wins", "losses", "win_rate", "total_profit_usd"]


# --- SPEC 8.2: the rules -------------------------------------------------------------------


def taken(days, **rules) -> list[bool]:
    return taken_flags(days, TradeRules(**rules))


def test_no_rules_take_what_was_traded():
    assert taken(WEEK) == [True, True, True, True, False, True]


def test_skip_weekdays():
    assert taken(WEEK, skip_weekdays=("Mon",)) == [False, True, True, True, False, False]
    m = performance_report(WEEK, TradeRules(skip_weekdays=("Mon", "Tue"))).streams["ES1"]
    assert (m.days, m.trades, m.total_profit_usd) == (6, 2, 500.0)   # Wed +500, Thu 0


def test_skip_days_of_month():
    assert taken(WEEK, skip_days_of_month=(8, 13)) == [True, True, False, True, False, False]


def test_skip_after_loss_looks_at_the_previous_decision_traded_or_not():
    # 01-06 Loss (first decision: never skipped) -> 01-07 skipped;
    # 01-10 Loss, not traded -> 01-13 still skipped.
    assert taken(WEEK, skip_after_loss=True) == [True, False, True, True, False, False]


def test_skip_after_loss_never_skips_the_first_decision():
    assert taken([dec("2025-01-06", "Win", 10)], skip_after_loss=True) == [True]
    assert taken([dec("2025-01-06", "Loss", -10)], skip_after_loss=True) == [True]


def test_skip_after_loss_looks_at_the_previous_decision_even_when_a_rule_skipped_it():
    # 01-06 Loss is skipped by the weekday rule, 01-07 after it is still skipped.
    assert taken(WEEK[:2], skip_after_loss=True, skip_weekdays=("Mon",)) == [False, False]


def test_min_slot_sum_looks_at_the_previous_decisions_sums():
    days = [dec("2025-01-06", "Win", 10, sums={"07:30": -6, "08:00": -5}),   # first: not skipped
            dec("2025-01-07", "Win", 10, sums={"07:30": -4, "08:00": -9}),   # prev all < -4: skip
            dec("2025-01-08", "Win", 10, sums={"07:30": -5, "08:00": -5}),   # prev has -4: not below
            dec("2025-01-09", "Win", 10)]                                    # prev all -5 < -4: skip
    assert taken(days, min_slot_sum=-4) == [True, False, True, False]
    assert taken(days, min_slot_sum=-10) == [True] * 4


def test_rules_sort_and_spell_their_lists():
    rules = TradeRules.from_mapping({"skip_weekdays": ["fri", "Mon", "mon"], "skip_days_of_month": [31, 1]})
    assert rules.skip_weekdays == ("Mon", "Fri") and rules.skip_days_of_month == (1, 31)
    assert TradeRules.from_mapping({}) == NO_RULES


@pytest.mark.parametrize("data, words", [
    ({"skip_weekday": ["Mon"]}, ["unknown", "skip_weekday"]),
    ({"skip_weekdays": ["Monday"]}, ["skip_weekdays", "'Monday'"]),
    ({"skip_weekdays": "Mon"}, ["skip_weekdays", "'Mon'", "list"]),
    ({"skip_days_of_month": [0]}, ["skip_days_of_month", "0"]),
    ({"skip_days_of_month": [32]}, ["skip_days_of_month", "32"]),
    ({"skip_days_of_month": [True]}, ["skip_days_of_month", "True"]),
    ({"skip_days_of_month": ["1"]}, ["skip_days_of_month", "'1'"]),
    ({"skip_after_loss": "yes"}, ["skip_after_loss", "'yes'"]),
    ({"min_slot_sum": "-4"}, ["min_slot_sum", "'-4'"]),
    ({"min_slot_sum": True}, ["min_slot_sum", "True"]),
    ({"min_slot_sum": float("nan")}, ["min_slot_sum", "nan"]),
    (["skip_after_loss"], ["rules", "table"]),
])
def test_bad_rules_are_refused_naming_key_and_value(data, words):
    with pytest.raises(ConfigError) as error:
        TradeRules.from_mapping(data)
    for word in words:
        assert word in str(error.value)


# --- properties ----------------------------------------------------------------------------

RESULTS = st.sampled_from(["Win", "Loss", "BE", "TIME", "NoTrade", None])


@st.composite
def decision_logs(draw):
    """A few streams' decisions on random dates with random trades."""
    out = []
    for stream, point_value, slots in (("ES1", 50.0, ("07:30", "08:00")), ("NQ2", 10.0, ("09:30", "10:00")),
                                       ("CL1", 1000.0, ("07:30",))):
        days = draw(st.lists(st.integers(0, 40), unique=True, max_size=25))
        for day in days:
            result = draw(RESULTS)
            traded = result is not None and draw(st.booleans())
            profit = draw(st.sampled_from([-20.0, -10.25, 0.0, 0.5, 10.0, 12.75]))
            sums = {slot: draw(st.integers(-26, 13)) for slot in slots}
            out.append(dec(f"2025-{1 + day // 28:02d}-{1 + day % 28:02d}", result, profit, traded=traded,
                           stream=stream, point_value=point_value, slot=draw(st.sampled_from(slots)),
                           sums=sums, time_change=draw(st.booleans())))
    return out


RULES = st.builds(
    TradeRules,
    skip_weekdays=st.lists(st.sampled_from(["Mon", "Tue", "Wed", "Thu", "Fri"]), max_size=2).map(tuple),
    skip_days_of_month=st.lists(st.integers(1, 31), max_size=3).map(tuple),
    skip_after_loss=st.booleans(),
    min_slot_sum=st.none() | st.integers(-10, 2),
)


@settings(max_examples=150, deadline=None)
@given(decision_logs(), RULES, st.data())
def test_report_of_parts_in_any_order_equals_report_of_the_whole(log, rules, data):
    shuffled = data.draw(st.permutations(log))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(log)), max_size=4)))
    parts = [shuffled[a:b] for a, b in zip([0] + cuts, cuts + [len(log)])]
    assert performance_report([d for part in parts for d in part], rules) == performance_report(log, rules)


@settings(max_examples=150, deadline=None)
@given(decision_logs(), RULES)
def test_report_invariants(log, rules):
    report = performance_report(log, rules)
    plain = performance_report(log)
    a = report.all
    assert a.days == len(log) == sum(m.days for m in report.streams.values())
    assert a.trades == sum(m.trades for m in report.streams.values()) <= plain.all.trades
    assert a.trades == a.wins + a.losses + a.breakevens + a.timeouts + a.no_trades
    assert a.max_drawdown_usd >= 0 and all(m.max_drawdown_usd >= 0 for m in report.streams.values())
    assert a.total_profit_usd == pytest.approx(sum(m.total_profit_usd for m in report.streams.values()))
    assert 0 <= a.win_rate <= 100
    for name, metrics in report.streams.items():
        ordered = sorted((d for d in log if d.stream == name), key=lambda d: d.date)
        flags = taken_flags(ordered, rules)
        assert all(d.traded for d, t in zip(ordered, flags) if t)          # a rule only removes trades
        assert sum(report.by[name]["weekday"][w].trades for w in report.by[name]["weekday"]) == metrics.trades
        assert sum(b.trades for b in report.by[name]["year"].values()) == metrics.trades
    assert sum(b.trades for b in report.by["all"]["slot"].values()) == a.trades


def test_equity_curves_by_hand():
    from sequencer.domain import DecisionColumns, EquityPoint, equity_curves

    curves = equity_curves(DecisionColumns.of(WEEK))
    # Traded dates only (01-10 was not traded): E = -500, 0, 500, 500, 1500; peak from E_0 = 0.
    assert curves["ES1"] == [EquityPoint("2025-01-06", -500.0, 500.0), EquityPoint("2025-01-07", 0.0, 0.0),
                             EquityPoint("2025-01-08", 500.0, 0.0), EquityPoint("2025-01-09", 500.0, 0.0),
                             EquityPoint("2025-01-13", 1500.0, 0.0)]
    assert curves["all"] == curves["ES1"]
    skipped = equity_curves(DecisionColumns.of(WEEK), TradeRules(skip_weekdays=("Mon",)))
    assert [p.date for p in skipped["ES1"]] == ["2025-01-07", "2025-01-08", "2025-01-09"]


@settings(max_examples=100, deadline=None)
@given(decision_logs(), RULES)
def test_equity_curves_agree_with_the_metrics(log, rules):
    from sequencer.domain import DecisionColumns, equity_curves

    report = performance_report(log, rules)
    curves = equity_curves(DecisionColumns.of(log), rules)
    for name, metrics in [*report.streams.items(), ("all", report.all)]:
        curve = curves[name]
        assert max((p.drawdown_usd for p in curve), default=0.0) == metrics.max_drawdown_usd
        assert len(curve) == len({p.date for p in curve})
        if curve:
            assert curve[-1].equity_usd == pytest.approx(metrics.total_profit_usd)


@settings(max_examples=100, deadline=None)
@given(decision_logs(), RULES, st.data())
def test_report_parts_of_disjoint_streams_merge_into_the_whole(log, rules, data):
    """As the processes of a split replay do: each reports its streams, the parent merges (through pickle)."""
    import pickle

    from sequencer.domain import DecisionColumns, merge_report_parts, report_part

    streams = sorted({d.stream for d in log})
    mine = set(data.draw(st.lists(st.sampled_from(streams), unique=True))) if streams else set()
    parts = [report_part(DecisionColumns.of([d for d in log if (d.stream in mine) == side]), rules)
             for side in (True, False)]
    merged = merge_report_parts([pickle.loads(pickle.dumps(p)) for p in parts], rules)
    assert merged == performance_report(log, rules)


def test_report_part_without_breakdowns_has_the_same_metrics():
    from sequencer.domain import DecisionColumns, merge_report_parts, report_part

    full = performance_report(WEEK)
    lean = merge_report_parts([report_part(DecisionColumns.of(WEEK), breakdowns=False)])
    assert (lean.streams, lean.all, lean.by) == (full.streams, full.all, {})


@settings(max_examples=150, deadline=None)
@given(decision_logs(), RULES, st.data())
def test_decisions_kept_by_stream_give_the_report_of_the_whole(log, rules, data):
    """``StreamDecisions`` (what a replay keeps while it folds) reports what the
    columns of the same decisions report, also given out of date order or a date twice."""
    from sequencer.domain import DecisionColumns, merge_report_parts, report_part
    from sequencer.domain.metrics import StreamDecisions

    given = data.draw(st.permutations(log)) if data.draw(st.booleans()) else log
    if given and data.draw(st.booleans()):
        given = given + [given[0]._replace(result="Win", profit_usd=1e6)]  # a (stream, date) twice: the first counts
    kept = StreamDecisions.for_rules(rules)
    for decision in given:
        kept.add(decision)
    breakdowns = data.draw(st.booleans())
    report = merge_report_parts([kept.report_part(rules, breakdowns=breakdowns)], rules)
    whole = performance_report(log, rules)
    assert (report.streams, report.all) == (whole.streams, whole.all)
    assert report == merge_report_parts([report_part(DecisionColumns.of(given), rules, breakdowns=breakdowns)],
                                        rules)
    assert len(kept) == len(given)
