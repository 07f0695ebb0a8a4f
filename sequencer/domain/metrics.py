"""Performance metrics (SPEC 8.3): what the sequencer's decisions earned.

A pure projection of decisions (anything with the attributes of ``Decision``
that ``TradeView`` names), standard library only. Public functions:

- ``performance_report(decisions, rules=NO_RULES) -> PerformanceReport``: the
  whole report, per stream, for ``all`` streams and the breakdowns by
  weekday, slot and year; ``PerformanceReport.to_dict()`` is the JSON of
  ``sequencer report --json``.
- ``taken_flags(decisions, rules) -> list[bool]``: SPEC 8.2, which of one
  stream's decisions (in date order) count as traded under the rules.
- ``compute_metrics(decisions, taken, *, points=True) -> Metrics``: the SPEC
  8.3 metrics of decisions in date order (one stream, or several: the
  ``all`` row, ``points=False``) and their taken flags.
- ``breakdowns(decisions, taken) -> dict``: trades, wins, losses, win rate
  and dollars by weekday, traded slot and year.
- ``weekday_of(date) -> str``: ``Mon``..``Sun`` of an ISO date.

Choices where SPEC 8.3 is silent (docs/performance.md): metrics are exact
floats, never rounded; sums use ``math.fsum`` (correctly rounded, so the
order decisions arrive in cannot change a digit); a (stream, date) given
twice counts once, the first one seen; the equity curve adds day totals in
date order; a breakdown lists every group that has a decision.

>>> from types import SimpleNamespace as D
>>> days = [D(stream="ES1", date="2025-01-06", traded_slot="07:30", result="Loss",
...           slot_sums={"07:30": -2}, time_change=False, traded=True, profit=-10.0, profit_usd=-500.0),
...         D(stream="ES1", date="2025-01-07", traded_slot="07:30", result="Win",
...           slot_sums={"07:30": -1}, time_change=False, traded=True, profit=10.0, profit_usd=500.0)]
>>> report = performance_report(days)
>>> report.all.trades, report.all.win_rate, report.all.max_drawdown_usd
(2, 50.0, 500.0)
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any, Iterable, Mapping, NamedTuple, Protocol, Sequence

from .trade_rules import NO_RULES, WEEKDAYS, TradeRules

#: Trading days a year, the annualisation of Sharpe, Sortino and Calmar.
TRADING_DAYS = 252
_ANNUAL = math.sqrt(TRADING_DAYS)

#: The name of the row over every stream together.
ALL = "all"

BREAKDOWN_KINDS: tuple[str, ...] = ("weekday", "slot", "year")


class TradeView(Protocol):
    """What the report reads of a decision (``Decision`` has all of it)."""

    stream: str
    date: str
    traded_slot: str
    result: str | None
    slot_sums: Mapping[str, int]
    time_change: bool
    traded: bool
    profit: float
    profit_usd: float


class Metrics(NamedTuple):
    """SPEC 8.3, in the order the report prints them; None is JSON null."""

    days: int
    trades: int
    wins: int
    losses: int
    breakevens: int
    timeouts: int
    no_trades: int
    time_changes: int
    win_rate: float
    total_profit: float | None
    total_profit_usd: float
    avg_profit_usd: float
    avg_win_usd: float
    avg_loss_usd: float
    risk_reward: float | None
    profit_factor: float | None
    max_drawdown_usd: float
    max_drawdown: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(METRIC_NAMES, self))


METRIC_NAMES: tuple[str, ...] = Metrics._fields


class Breakdown(NamedTuple):
    """One group of a breakdown (a weekday, a slot, a year)."""

    trades: int
    wins: int
    losses: int
    win_rate: float
    total_profit_usd: float

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(BREAKDOWN_FIELDS, self))


BREAKDOWN_FIELDS: tuple[str, ...] = Breakdown._fields


class PerformanceReport(NamedTuple):
    """The report: the rules applied, a row per stream (by name), the ``all``
    row, and the breakdowns of each stream and of ``all``
    (``by[stream or "all"][kind][group]``)."""

    rules: TradeRules
    streams: Mapping[str, Metrics]
    all: Metrics
    by: Mapping[str, Mapping[str, Mapping[str, Breakdown]]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of ``sequencer report --json``."""
        return {
            "rules": self.rules.to_dict(),
            "streams": {name: metrics.to_dict() for name, metrics in self.streams.items()},
            "all": self.all.to_dict(),
            "by": {
                name: {kind: {group: row.to_dict() for group, row in groups.items()}
                       for kind, groups in kinds.items()}
                for name, kinds in self.by.items()
            },
        }


_WEEKDAY_CACHE: dict[str, str] = {}  # a few thousand trading dates at most


def weekday_of(date: str) -> str:
    """``Mon``..``Sun`` of an ISO date ``YYYY-MM-DD``."""
    name = _WEEKDAY_CACHE.get(date)
    if name is None:
        name = WEEKDAYS[_dt.date.fromisoformat(date).weekday()]
        if len(_WEEKDAY_CACHE) < 100_000:
            _WEEKDAY_CACHE[date] = name
    return name


def taken_flags(decisions: Sequence[TradeView], rules: TradeRules = NO_RULES) -> list[bool]:
    """Which of one stream's decisions, in date order, count as traded (SPEC 8.2).

    A decision is taken when it was traded and no rule skips it; the
    after-loss and slot-sum rules look at the previous decision in the input
    whether or not that one was taken, and never skip the first.
    """
    if rules.skips_nothing:
        return [bool(d.traded) for d in decisions]
    weekdays = set(rules.skip_weekdays)
    days_of_month = set(rules.skip_days_of_month)
    after_loss = rules.skip_after_loss
    minimum = rules.min_slot_sum
    flags: list[bool] = []
    previous = None
    for decision in decisions:
        taken = bool(decision.traded)
        if taken and weekdays and weekday_of(decision.date) in weekdays:
            taken = False
        if taken and days_of_month and int(decision.date[8:10]) in days_of_month:
            taken = False
        if taken and previous is not None:
            if after_loss and previous.result == "Loss":
                taken = False
            elif minimum is not None:
                sums = previous.slot_sums.values()
                if sums and all(value < minimum for value in sums):
                    taken = False
        flags.append(taken)
        previous = decision
    return flags


def _win_rate(wins: int, losses: int) -> float:
    # BE excluded, as the desk's tool counted it; 0 when nothing won or lost.
    return 100.0 * wins / (wins + losses) if wins + losses else 0.0


def _max_drawdown(day_totals: Iterable[float]) -> float:
    """Largest fall of the equity curve E_0 = 0, E_k = V_1 + ... + V_k from its running peak."""
    equity = peak = worst = 0.0
    for value in day_totals:
        equity += value
        if equity > peak:
            peak = equity
        elif peak - equity > worst:
            worst = peak - equity
    return worst


def _day_totals(dates: Sequence[str], values: Sequence[float]) -> list[float]:
    """V_d: the values of each date summed, in date order (``dates`` sorted)."""
    totals: list[float] = []
    start = 0
    for i in range(1, len(dates) + 1):
        if i == len(dates) or dates[i] != dates[start]:
            totals.append(values[start] if i - start == 1 else math.fsum(values[start:i]))
            start = i
    return totals


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _sharpe(day_totals: Sequence[float]) -> float | None:
    count = len(day_totals)
    if count < 2 or min(day_totals) == max(day_totals):  # fewer than 2 dates, or std 0
        return None
    mean = _mean(day_totals)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in day_totals) / (count - 1))
    return mean / std * _ANNUAL if std else None


def _sortino(day_totals: Sequence[float]) -> float | None:
    count = len(day_totals)
    if count < 2:
        return None
    downside = math.sqrt(math.fsum(v * v for v in day_totals if v < 0) / count)
    return _mean(day_totals) / downside * _ANNUAL if downside else None


def compute_metrics(decisions: Sequence[TradeView], taken: Sequence[bool], *,
                    points: bool = True) -> Metrics:
    """SPEC 8.3 over ``decisions`` in date order and their taken flags.

    ``points=False`` for the ``all`` row: points of different instruments do
    not add, so ``total_profit`` and ``max_drawdown`` are None.
    """
    counts = {"Win": 0, "Loss": 0, "BE": 0, "TIME": 0, "NoTrade": 0}
    dates: list[str] = []
    usd: list[float] = []
    pts: list[float] = []
    time_changes = 0
    for decision, is_taken in zip(decisions, taken):
        if decision.time_change:
            time_changes += 1
        if is_taken:
            result = decision.result
            if result in counts:
                counts[result] += 1
            dates.append(decision.date)
            usd.append(decision.profit_usd)
            pts.append(decision.profit)
    trades = len(usd)
    wins, losses = counts["Win"], counts["Loss"]
    gains = [v for v in usd if v > 0]
    falls = [-v for v in usd if v < 0]
    gross_gain = math.fsum(gains)
    gross_loss = math.fsum(falls)
    avg_win = gross_gain / len(gains) if gains else 0.0
    avg_loss = gross_loss / len(falls) if falls else 0.0
    total_usd = math.fsum(usd)
    day_usd = _day_totals(dates, usd)
    drawdown_usd = _max_drawdown(day_usd)
    return Metrics(
        days=len(decisions),
        trades=trades,
        wins=wins,
        losses=losses,
        breakevens=counts["BE"],
        timeouts=counts["TIME"],
        no_trades=counts["NoTrade"],
        time_changes=time_changes,
        win_rate=_win_rate(wins, losses),
        total_profit=math.fsum(pts) if points else None,
        total_profit_usd=total_usd,
        avg_profit_usd=total_usd / trades if trades else 0.0,
        avg_win_usd=avg_win,
        avg_loss_usd=avg_loss,
        risk_reward=avg_win / avg_loss if avg_loss else None,
        profit_factor=gross_gain / gross_loss if gross_loss else None,
        max_drawdown_usd=drawdown_usd,
        max_drawdown=_max_drawdown(_day_totals(dates, pts)) if points else None,
        sharpe=_sharpe(day_usd),
        sortino=_sortino(day_usd),
        calmar=TRADING_DAYS * _mean(day_usd) / drawdown_usd if drawdown_usd else None,
    )


def _group_key(kind: str, decision: TradeView) -> str:
    if kind == "weekday":
        return weekday_of(decision.date)
    if kind == "slot":
        return decision.traded_slot
    return decision.date[:4]


def _group_order(kind: str, keys: Iterable[str]) -> list[str]:
    if kind == "weekday":
        return [day for day in WEEKDAYS if day in set(keys)]
    return sorted(keys)


def breakdowns(decisions: Sequence[TradeView], taken: Sequence[bool]) -> dict[str, dict[str, Breakdown]]:
    """Trades, wins, losses, win rate and dollars by weekday, traded slot and
    year; every group with a decision appears, in weekday, time or year order."""
    result: dict[str, dict[str, Breakdown]] = {}
    for kind in BREAKDOWN_KINDS:
        groups: dict[str, tuple[list[int], list[float]]] = {}
        for decision, is_taken in zip(decisions, taken):
            key = _group_key(kind, decision)
            group = groups.get(key)
            if group is None:
                group = groups[key] = ([0, 0, 0], [])
            if is_taken:
                counts, usd = group
                counts[0] += 1
                if decision.result == "Win":
                    counts[1] += 1
                elif decision.result == "Loss":
                    counts[2] += 1
                usd.append(decision.profit_usd)
        result[kind] = {
            key: Breakdown(groups[key][0][0], groups[key][0][1], groups[key][0][2],
                           _win_rate(groups[key][0][1], groups[key][0][2]), math.fsum(groups[key][1]))
            for key in _group_order(kind, groups)
        }
    return result


def performance_report(decisions: Iterable[TradeView], rules: TradeRules = NO_RULES) -> PerformanceReport:
    """The report of any decisions, in any order (SPEC 8.3).

    Decisions are put in (stream, date) order; a (stream, date) seen twice
    counts once (the first), as a consumer of an at-least-once topic must.
    The rules apply over each stream's decisions in date order.
    """
    by_stream: dict[str, dict[str, TradeView]] = {}
    for decision in decisions:
        days = by_stream.get(decision.stream)
        if days is None:
            days = by_stream[decision.stream] = {}
        days.setdefault(decision.date, decision)

    streams: dict[str, Metrics] = {}
    by: dict[str, dict[str, dict[str, Breakdown]]] = {}
    every: list[tuple[str, str, TradeView, bool]] = []
    for name in sorted(by_stream):
        days = by_stream[name]
        ordered = [days[date] for date in sorted(days)]
        taken = taken_flags(ordered, rules)
        streams[name] = compute_metrics(ordered, taken)
        by[name] = breakdowns(ordered, taken)
        every.extend((d.date, name, d, t) for d, t in zip(ordered, taken))
    every.sort(key=lambda row: (row[0], row[1]))
    all_decisions = [row[2] for row in every]
    all_taken = [row[3] for row in every]
    by_all = breakdowns(all_decisions, all_taken)
    return PerformanceReport(
        rules=rules,
        streams=streams,
        all=compute_metrics(all_decisions, all_taken, points=False),
        by={ALL: by_all, **by},
    )
