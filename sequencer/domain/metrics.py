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
- ``report_of_columns(columns, rules)``: the same report of ``DecisionColumns``
  (a file reader's fast path; ``DecisionColumns.of(decisions)`` builds them).
- ``report_part(columns, rules) -> ReportPart`` and ``merge_report_parts(parts)``:
  the report computed in pieces over disjoint streams (processes of a split
  replay), merged into the same report, digit for digit.
- ``equity_curves(columns, rules) -> {stream or "all": [EquityPoint]}``: the
  equity curve and drawdown in dollars at each traded date.
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
from collections import Counter
import operator
from bisect import bisect_left, bisect_right
from itertools import accumulate, chain, compress, repeat
from typing import Any, Iterable, Iterator, Mapping, NamedTuple, Protocol, Sequence

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


class DecisionColumns(NamedTuple):
    """The fields the report reads, one list per field, a row per decision.

    The report works on columns: a pass per field in C (``compress``,
    ``Counter``, ``fsum``) instead of one Python step per decision per figure.
    ``slot_sums`` is needed only by the ``min_slot_sum`` rule; a reader that
    knows the rules may leave it None.
    """

    stream: Sequence[str]
    date: Sequence[str]
    traded_slot: Sequence[str]
    result: Sequence[str | None]
    time_change: Sequence[bool]
    traded: Sequence[bool]
    profit: Sequence[float]
    profit_usd: Sequence[float]
    slot_sums: Sequence[Mapping[str, int]] | None = None

    @classmethod
    def of(cls, decisions: Iterable[TradeView], *, slot_sums: bool = True) -> "DecisionColumns":
        """The columns of decisions (``slot_sums`` as plain dicts, or left out)."""
        rows = decisions if isinstance(decisions, (list, tuple)) else list(decisions)
        # A pass in C per field (``attrgetter``), not a Python step per decision.
        columns = [list(map(operator.attrgetter(name), rows)) for name in cls._fields[:-1]]
        sums = list(map(dict, map(operator.attrgetter("slot_sums"), rows))) if slot_sums else None
        return cls(*columns, sums)

    @classmethod
    def concat(cls, parts: Sequence["DecisionColumns"]) -> "DecisionColumns":
        """One table of several; ``slot_sums`` only when every part has them."""
        sums = None if any(p.slot_sums is None for p in parts) else [s for p in parts for s in p.slot_sums]
        return cls(*([value for p in parts for value in getattr(p, name)] for name in cls._fields[:-1]), sums)


def taken_flags(decisions: Sequence[TradeView], rules: TradeRules = NO_RULES) -> list[bool]:
    """Which of one stream's decisions, in date order, count as traded (SPEC 8.2).

    A decision is taken when it was traded and no rule skips it; the
    after-loss and slot-sum rules look at the previous decision in the input
    whether or not that one was taken, and never skip the first.
    """
    columns = DecisionColumns.of(decisions)
    return _taken(columns.date, columns.result, columns.slot_sums, columns.traded, rules)


def _taken(dates: Sequence[str], results: Sequence[str | None], sums: Sequence[Mapping[str, int]] | None,
           traded: Sequence[bool], rules: TradeRules) -> list[bool]:
    flags = list(map(bool, traded))
    if rules.skips_nothing:
        return flags
    weekdays = set(rules.skip_weekdays)
    days_of_month = set(rules.skip_days_of_month)
    minimum = rules.min_slot_sum
    if minimum is not None and sums is None:
        raise ValueError("the min_slot_sum rule needs the decisions' slot_sums")
    for i, date in enumerate(dates):
        if not flags[i]:
            continue
        if weekdays and weekday_of(date) in weekdays:
            flags[i] = False
        elif days_of_month and int(date[8:10]) in days_of_month:
            flags[i] = False
        elif i and rules.skip_after_loss and results[i - 1] == "Loss":
            flags[i] = False
        elif i and minimum is not None:
            previous = sums[i - 1].values()
            if previous and all(value < minimum for value in previous):
                flags[i] = False
    return flags


def _win_rate(wins: int, losses: int) -> float:
    # BE excluded, as the desk's tool counted it; 0 when nothing won or lost.
    return 100.0 * wins / (wins + losses) if wins + losses else 0.0


def _max_drawdown(day_totals: Iterable[float]) -> float:
    """Largest fall of the equity curve E_0 = 0, E_k = V_1 + ... + V_k from its running peak."""
    # A plain loop over the running sums: on Python 3.11 its float compares
    # are specialised, and it measures 3x faster than the same figure from C
    # passes (``accumulate(equity, max)`` calls the builtin ``max`` per day).
    # The peak starts at E_0 = 0.0 and moves only on a strictly higher E_k,
    # as ``max(peak, E_k)`` would; every fall is ``peak - E_k``.
    peak = fall = 0.0
    for equity in accumulate(day_totals):
        if equity > peak:
            peak = equity
        elif peak - equity > fall:
            fall = peak - equity
    return fall


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _sharpe(day_totals: Sequence[float], mean: float | None = None) -> float | None:
    """``mean``: ``_mean(day_totals)`` if the caller has it already."""
    count = len(day_totals)
    # Fewer than 2 dates, or every total the same (std 0; the mean of equal
    # values need not be exactly that value): one C pass of compares.
    if count < 2 or day_totals.count(day_totals[0]) == count:
        return None
    mean = _mean(day_totals) if mean is None else mean
    deviations = list(map(operator.sub, day_totals, repeat(mean)))
    std = math.sqrt(math.fsum(map(operator.mul, deviations, deviations)) / (count - 1))
    return mean / std * _ANNUAL if std else None


def _sortino(day_totals: Sequence[float], mean: float | None = None) -> float | None:
    """``mean``: ``_mean(day_totals)`` if the caller has it already."""
    count = len(day_totals)
    if count < 2:
        return None
    negative = list(filter((0.0).__gt__, day_totals))
    downside = math.sqrt(math.fsum(map(operator.mul, negative, negative)) / count)
    mean = _mean(day_totals) if mean is None else mean
    return mean / downside * _ANNUAL if downside else None


def _day_series(dates: Sequence[str], values: Sequence[float]) -> tuple[list[str], list[float]]:
    """The traded dates in order and V_d of each (the values of a date summed)."""
    if _increasing(dates):  # one stream in date order: a value per date
        return list(dates), list(values)
    return _grouped_sums(dates, values)


def _grouped_sums(dates: Sequence[str], values: Sequence[float]) -> tuple[list[str], list[float]]:
    """The distinct dates in order and the ``fsum`` of each date's values (a
    single value as it is: ``fsum`` would turn -0.0 into 0.0).

    The ``all`` row has a value per decision (120,000 in the benchmark): the
    values go into a list per date in one pass, and only the distinct dates
    are sorted (measured: 0.6x the time of a stable sort of every row by
    date). ``fsum`` is exact, so the order of a date's values cannot change
    a digit.
    """
    groups: dict[str, list[float]] = {}
    get = groups.get
    for date, value in zip(dates, values):
        group = get(date)
        if group is None:
            groups[date] = [value]
        else:
            group.append(value)
    days = sorted(groups)
    totals = [group[0] if len(group) == 1 else math.fsum(group) for group in map(groups.__getitem__, days)]
    return days, totals


def _increasing(values: Sequence[str]) -> bool:
    """Strictly increasing (in C: ``map`` over ``operator.lt``)."""
    return all(map(operator.lt, values[:-1], values[1:]))


def _gather(column: Sequence, rows: Sequence[int]) -> list:
    if len(rows) == 1:
        return [column[rows[0]]]
    return list(operator.itemgetter(*rows)(column))


class _DateKeys:
    """Weekday and year of each date, computed once per distinct date."""

    def __init__(self, dates: Iterable[str]) -> None:
        distinct = set(dates)
        self.weekday = {date: weekday_of(date) for date in distinct}
        self.year = {date: date[:4] for date in distinct}


class _Tally:
    """The taken trades of one stream (or, merged, of all) and the groups of
    the breakdowns. Every sum is an ``fsum`` (exact, then rounded once), so a
    merged tally gives the figures of one pass over all decisions, digit for digit."""

    __slots__ = ("days", "time_changes", "dates", "results", "usd", "pts", "groups", "one_per_date")

    def __init__(self) -> None:
        #: The trades' dates strictly increase (one stream's, a date once):
        #: True when the caller knows it, None to be checked.
        self.one_per_date: bool | None = None
        self.days = 0
        self.time_changes = 0
        self.dates: list[str] = []      # of the taken trades, date order
        self.results: list[str | None] = []
        self.usd: list[float] = []
        self.pts: list[float] = []
        # kind -> group -> [trades, wins, losses, [usd ...]]
        self.groups: dict[str, dict[str, list]] = {kind: {} for kind in BREAKDOWN_KINDS}

    @classmethod
    def of(cls, dates: Sequence[str], slots: Sequence[str], results: Sequence[str | None],
           time_changes: Sequence[bool], taken: Sequence[bool], profit: Sequence[float],
           usd: Sequence[float], date_keys: _DateKeys | None = None, *,
           with_breakdowns: bool = True) -> "_Tally":
        """One stream's decisions as columns, in date order, and their taken flags."""
        tally = cls()
        tally.days = len(dates)
        tally.time_changes = sum(map(bool, time_changes))
        tally.dates = list(compress(dates, taken))
        tally.results = list(compress(results, taken))
        tally.usd = list(compress(usd, taken))
        tally.pts = list(compress(profit, taken))
        if not with_breakdowns:
            return tally
        date_keys = date_keys or _DateKeys(dates)
        weekday, year = date_keys.weekday.__getitem__, date_keys.year.__getitem__
        keys = {
            "weekday": (set(map(weekday, dates)), list(map(weekday, tally.dates))),
            "slot": (set(slots), list(compress(slots, taken))),
            "year": (set(map(year, dates)), list(map(year, tally.dates))),
        }
        is_win = list(map("Win".__eq__, tally.results))
        is_loss = list(map("Loss".__eq__, tally.results))
        for kind, (every_key, taken_keys) in keys.items():
            groups = tally.groups[kind]
            if kind == "year":  # dates in order: each year's trades are one run
                for key in sorted(every_key):
                    a, b = bisect_left(taken_keys, key), bisect_right(taken_keys, key)
                    groups[key] = [b - a, sum(is_win[a:b]), sum(is_loss[a:b]), tally.usd[a:b]]
                continue
            for key in every_key:  # a handful of weekdays or slots: a pass in C for each
                mask = list(map(key.__eq__, taken_keys))
                values = list(compress(tally.usd, mask))
                groups[key] = [len(values), sum(compress(is_win, mask)), sum(compress(is_loss, mask)), values]
        return tally

    def __getstate__(self):
        return tuple(getattr(self, name) for name in self.__slots__)

    def __setstate__(self, values) -> None:
        for name, value in zip(self.__slots__, values):
            setattr(self, name, value)

    def merge(self, other: "_Tally") -> None:
        """Add another stream's tally (the ``all`` row); trades stay a multiset, not in date order."""
        self.one_per_date = None if self.days or self.dates else other.one_per_date
        self.days += other.days
        self.time_changes += other.time_changes
        self.dates.extend(other.dates)
        self.results.extend(other.results)
        self.usd.extend(other.usd)
        self.pts.extend(other.pts)
        for kind, groups in other.groups.items():
            into = self.groups[kind]
            for key, (trades, wins, losses, values) in groups.items():
                group = into.get(key)
                if group is None:
                    into[key] = [trades, wins, losses, list(values)]
                else:
                    group[0] += trades
                    group[1] += wins
                    group[2] += losses
                    group[3].extend(values)

    def metrics(self, *, points: bool) -> Metrics:
        usd = self.usd
        trades = len(usd)
        # ``list.count`` per result kind: a C compare per trade (by identity,
        # the results are a few shared strings), 5x faster than a ``Counter``.
        count = self.results.count
        wins, losses = count("Win"), count("Loss")
        gains = list(filter((0.0).__lt__, usd))
        falls = list(filter((0.0).__gt__, usd))
        gross_gain = math.fsum(gains)
        gross_loss = -math.fsum(falls)  # the sum of -v over v < 0
        avg_win = gross_gain / len(gains) if gains else 0.0
        avg_loss = gross_loss / len(falls) if falls else 0.0
        total_usd = math.fsum(usd)
        # One stream's trades have a date each (the common case): the day
        # totals are the values themselves and their mean is the mean trade.
        one_per_date = self.one_per_date if self.one_per_date is not None else _increasing(self.dates)
        day_usd = usd if one_per_date else _grouped_sums(self.dates, usd)[1]
        day_mean = (total_usd / trades if one_per_date else _mean(day_usd)) if day_usd else 0.0
        drawdown_usd = _max_drawdown(day_usd)
        return Metrics(
            days=self.days,
            trades=trades,
            wins=wins,
            losses=losses,
            breakevens=count("BE"),
            timeouts=count("TIME"),
            no_trades=count("NoTrade"),
            time_changes=self.time_changes,
            win_rate=_win_rate(wins, losses),
            total_profit=math.fsum(self.pts) if points else None,
            total_profit_usd=total_usd,
            avg_profit_usd=total_usd / trades if trades else 0.0,
            avg_win_usd=avg_win,
            avg_loss_usd=avg_loss,
            risk_reward=avg_win / avg_loss if avg_loss else None,
            profit_factor=gross_gain / gross_loss if gross_loss else None,
            max_drawdown_usd=drawdown_usd,
            max_drawdown=(_max_drawdown(self.pts if one_per_date else _grouped_sums(self.dates, self.pts)[1])
                          if points else None),
            sharpe=_sharpe(day_usd, day_mean),
            sortino=_sortino(day_usd, day_mean),
            calmar=TRADING_DAYS * day_mean / drawdown_usd if drawdown_usd else None,
        )

    def breakdowns(self) -> dict[str, dict[str, Breakdown]]:
        out: dict[str, dict[str, Breakdown]] = {}
        for kind, groups in self.groups.items():
            order = [day for day in WEEKDAYS if day in groups] if kind == "weekday" else sorted(groups)
            out[kind] = {}
            for key in order:
                trades, wins, losses, values = groups[key]
                out[kind][key] = Breakdown(trades, wins, losses, _win_rate(wins, losses), math.fsum(values))
        return out


def _sorted_tally(columns: DecisionColumns, rules: TradeRules, date_keys: _DateKeys | None,
                  with_breakdowns: bool = True) -> _Tally:
    """One stream's columns (in date order) through the rules into a tally."""
    taken = _taken(columns.date, columns.result, columns.slot_sums, columns.traded, rules)
    tally = _Tally.of(columns.date, columns.traded_slot, columns.result, columns.time_change, taken,
                      columns.profit, columns.profit_usd, date_keys, with_breakdowns=with_breakdowns)
    tally.one_per_date = True  # one stream's columns in date order, a date once
    return tally


def compute_metrics(decisions: Sequence[TradeView], taken: Sequence[bool], *,
                    points: bool = True) -> Metrics:
    """SPEC 8.3 over ``decisions`` in date order (one stream's, or several: the
    ``all`` row) and their taken flags.

    ``points=False`` for the ``all`` row: points of different instruments do
    not add, so ``total_profit`` and ``max_drawdown`` are None.
    """
    c = DecisionColumns.of(decisions)
    return _Tally.of(c.date, c.traded_slot, c.result, c.time_change, taken, c.profit,
                     c.profit_usd).metrics(points=points)


def breakdowns(decisions: Sequence[TradeView], taken: Sequence[bool]) -> dict[str, dict[str, Breakdown]]:
    """Trades, wins, losses, win rate and dollars by weekday, traded slot and
    year; every group with a decision appears, in weekday, time or year order."""
    c = DecisionColumns.of(decisions)
    return _Tally.of(c.date, c.traded_slot, c.result, c.time_change, taken, c.profit,
                     c.profit_usd).breakdowns()


def performance_report(decisions: Iterable[TradeView], rules: TradeRules = NO_RULES) -> PerformanceReport:
    """The report of any decisions, in any order (SPEC 8.3).

    Decisions are put in (stream, date) order; a (stream, date) seen twice
    counts once (the first), as a consumer of an at-least-once topic must.
    The rules apply over each stream's decisions in date order.
    """
    return report_of_columns(DecisionColumns.of(decisions), rules)


def _rows_by_stream(streams: Sequence[str]) -> dict[str, list[int]]:
    """Each stream's row numbers, ascending, by stream name in order.

    In C: a stable sort of the row numbers by stream (rows of a stream keep
    their order), then one slice per stream, its size from a ``Counter``.
    """
    order = sorted(range(len(streams)), key=streams.__getitem__)
    counts = Counter(streams)
    rows: dict[str, list[int]] = {}
    end = 0
    for name in sorted(counts):
        start, end = end, end + counts[name]
        rows[name] = order[start:end]
    return rows


def _streams_of(columns: DecisionColumns) -> Iterator[tuple[str, DecisionColumns]]:
    """Each stream's columns, by stream name, in date order, the first of a date given twice."""
    present = [field for field in DecisionColumns._fields if getattr(columns, field) is not None]
    for name, rows in _rows_by_stream(columns.stream).items():
        if rows[-1] - rows[0] + 1 == len(rows):  # the stream's rows are one run: slices, no gathering
            stream = DecisionColumns(**{field: getattr(columns, field)[rows[0]:rows[-1] + 1]
                                        for field in present})
        else:
            stream = DecisionColumns(**{field: _gather(getattr(columns, field), rows) for field in present})
        yield name, _in_date_order(stream)


def _in_date_order(stream: DecisionColumns) -> DecisionColumns:
    """One stream's columns in date order, the first of a date given twice."""
    if _increasing(stream.date):
        return stream
    present = [field for field in DecisionColumns._fields if getattr(stream, field) is not None]
    first = dict(zip(reversed(stream.date), range(len(stream.date) - 1, -1, -1)))
    order = [first[date] for date in sorted(first)]
    return DecisionColumns(**{field: _gather(getattr(stream, field), order) for field in present})


#: What ``StreamDecisions`` keeps of a decision: the report's fields but the
#: stream (its key) and ``slot_sums`` (only the ``min_slot_sum`` rule reads them).
_KEPT_FIELDS: tuple[str, ...] = DecisionColumns._fields[1:-1]


class StreamDecisions:
    """What the report reads of decisions, kept by stream as a fold emits them.

    ``add`` is called with each decision while it is fresh; it keeps a tuple of
    the report's fields (one C call) in its stream's list, so the decisions
    themselves are freed once written and the report needs neither a pass per
    field over every decision nor a sort of the rows by stream. A fold emits a
    stream's decisions in date order; any other order (or a date twice) is put
    right as ``report_part`` does.

    >>> from types import SimpleNamespace as D
    >>> kept = StreamDecisions()
    >>> kept.add(D(stream="ES1", date="2025-01-06", traded_slot="07:30", result="Win",
    ...            slot_sums={}, time_change=False, traded=True, profit=10.0, profit_usd=500.0))
    >>> merge_report_parts([kept.report_part(NO_RULES)]).all.total_profit_usd
    500.0
    """

    __slots__ = ("_pick", "_rows", "_slot_sums")

    def __init__(self, *, slot_sums: bool = False) -> None:
        self._slot_sums = slot_sums
        self._pick = operator.attrgetter(*_KEPT_FIELDS, *(("slot_sums",) if slot_sums else ()))
        self._rows: dict[str, list[tuple]] = {}

    @classmethod
    def for_rules(cls, rules: TradeRules) -> "StreamDecisions":
        """Keeping ``slot_sums`` only when the rules read them."""
        return cls(slot_sums=rules.min_slot_sum is not None)

    def add(self, decision: TradeView) -> None:
        rows = self._rows.get(decision.stream)
        if rows is None:
            rows = self._rows[decision.stream] = []
        rows.append(self._pick(decision))

    def __len__(self) -> int:
        return sum(map(len, self._rows.values()))

    def streams(self) -> list[tuple[str, DecisionColumns]]:
        """Each stream's columns, by stream name, in date order."""
        out = []
        for name in sorted(self._rows):
            rows = self._rows[name]
            columns = list(zip(*rows))  # a column per kept field, in C
            sums = columns.pop() if self._slot_sums else None
            out.append((name, _in_date_order(DecisionColumns([name] * len(rows), *columns, sums))))
        return out

    def report_part(self, rules: TradeRules = NO_RULES, *, breakdowns: bool = True) -> "ReportPart":
        """``report_part`` of the kept decisions."""
        return _part_of_streams(self.streams(), rules, breakdowns)


def report_of_columns(columns: DecisionColumns, rules: TradeRules = NO_RULES) -> PerformanceReport:
    """``performance_report`` of decisions given as columns (a file reader's fast path)."""
    return merge_report_parts([report_part(columns, rules)])


class ReportPart:
    """The report of some streams, before the ``all`` row: what a process that
    folded those streams hands on (it pickles). Parts of disjoint streams merge
    (``merge_report_parts``) into the report of them all, digit for digit."""

    __slots__ = ("rules", "streams", "by", "every")

    def __init__(self, rules: TradeRules) -> None:
        self.rules = rules
        self.streams: dict[str, Metrics] = {}
        self.by: dict[str, dict[str, dict[str, Breakdown]]] = {}
        self.every = _Tally()

    def __getstate__(self):
        return self.rules, self.streams, self.by, self.every.__getstate__()

    def __setstate__(self, values) -> None:
        self.rules, self.streams, self.by, every = values
        self.every = _Tally()
        self.every.__setstate__(every)


def report_part(columns: DecisionColumns, rules: TradeRules = NO_RULES, *,
                breakdowns: bool = True) -> ReportPart:
    """Per-stream metrics and breakdowns of ``columns``, and their tally for
    ``all``; ``breakdowns=False`` leaves the breakdowns out (the report's ``by``
    stays empty), for performance.csv, which has none."""
    return _part_of_streams(list(_streams_of(columns)), rules, breakdowns)


def _part_of_streams(streams: Sequence[tuple[str, DecisionColumns]], rules: TradeRules,
                     breakdowns: bool) -> ReportPart:
    """``report_part`` of streams' columns, each in date order (a date once)."""
    date_keys = _DateKeys(chain.from_iterable(stream.date for _, stream in streams)) if breakdowns else None
    part = ReportPart(rules)
    for name, stream in streams:
        tally = _sorted_tally(stream, rules, date_keys, breakdowns)
        part.streams[name] = tally.metrics(points=True)
        if breakdowns:
            part.by[name] = tally.breakdowns()
        part.every.merge(tally)
    return part


def merge_report_parts(parts: Sequence[ReportPart], rules: TradeRules | None = None) -> PerformanceReport:
    """The report of parts of disjoint streams under the same rules."""
    rules = rules if rules is not None else (parts[0].rules if parts else NO_RULES)
    if any(part.rules != rules for part in parts):
        raise ValueError("report parts computed under different rules")
    names = [name for part in parts for name in part.streams]
    if len(names) != len(set(names)):
        raise ValueError("report parts share streams: merge needs disjoint streams")
    every = _Tally()
    streams: dict[str, Metrics] = {}
    by: dict[str, dict[str, dict[str, Breakdown]]] = {}
    for part in parts:
        every.merge(part.every)
        streams.update(part.streams)
        by.update(part.by)
    order = sorted(streams)
    return PerformanceReport(
        rules=rules,
        streams={name: streams[name] for name in order},
        all=every.metrics(points=False),
        by={ALL: every.breakdowns(), **{name: by[name] for name in order}} if by or not streams else {},
    )


class EquityPoint(NamedTuple):
    """The equity curve at one traded date: E_k (dollars) and its fall from the running peak."""

    date: str
    equity_usd: float
    drawdown_usd: float


def equity_curves(columns: DecisionColumns, rules: TradeRules = NO_RULES) -> dict[str, list[EquityPoint]]:
    """SPEC 8.3's equity curve and drawdown over time, per stream and for ``all``:
    one point per date with a trade (after the rules); ``max_drawdown_usd`` is
    the largest ``drawdown_usd`` of the same curve."""
    date_keys = _DateKeys(columns.date)
    curves: dict[str, list[EquityPoint]] = {}
    every = _Tally()
    for name, stream in _streams_of(columns):
        tally = _sorted_tally(stream, rules, date_keys)
        curves[name] = _curve(tally)
        every.merge(tally)
    return {ALL: _curve(every), **curves}


def _curve(tally: _Tally) -> list[EquityPoint]:
    dates, totals = _day_series(tally.dates, tally.usd)
    equity = list(accumulate(totals))
    peaks = list(accumulate(equity, max, initial=0.0))[1:]
    return [EquityPoint(d, e, p - e) for d, e, p in zip(dates, equity, peaks)]
