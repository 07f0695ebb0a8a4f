"""What the dashboard's Performance section shows, without Streamlit (tests drive it).

The section is a view of ``sequencer report``: the same decisions (a
decisions.csv given with ``--decisions``, or the worker's decisions topic),
the same rules (the config file's ``rules`` table, editable in the sidebar),
the same metrics (``sequencer.domain.metrics``) and the same performance.csv.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable

from sequencer.adapters.files.config_file import load_rules
from ..domain import (
    ALL,
    BREAKDOWN_KINDS,
    DecisionColumns,
    PerformanceReport,
    TradeRules,
    equity_curves,
    report_of_columns,
)

#: Seconds the page waits for the decisions topic (a broker that does not answer must not hang it).
TOPIC_TIMEOUT_S = 20.0

#: The metric cards, as the desk's earlier tool showed them: (label, metric, format).
METRIC_CARDS: tuple[tuple[str, str, str], ...] = (
    ("Trades", "trades", "count"),
    ("Win rate", "win_rate", "pct"),
    ("Profit $", "total_profit_usd", "money"),
    ("Profit (points)", "total_profit", "number"),
    ("Wins / losses / BE", "wins", "results"),
    ("Avg trade $", "avg_profit_usd", "money"),
    ("Avg win $", "avg_win_usd", "money"),
    ("Avg loss $", "avg_loss_usd", "money"),
    ("Max drawdown $", "max_drawdown_usd", "money"),
    ("Sharpe", "sharpe", "ratio"),
    ("Sortino", "sortino", "ratio"),
    ("Calmar", "calmar", "ratio"),
    ("Profit factor", "profit_factor", "ratio"),
    ("Risk-reward", "risk_reward", "ratio"),
    ("Time changes", "time_changes", "count"),
    ("Days", "days", "count"),
)


def card_value(metrics: Any, metric: str, kind: str) -> str:
    """A card's text; SPEC 8.3's undefined figures (None) show as a dash."""
    if kind == "results":
        return f"{metrics.wins:,}/{metrics.losses:,}/{metrics.breakevens:,}"
    value = getattr(metrics, metric)
    if value is None:
        return "-"
    if kind == "count":
        return f"{value:,}"
    if kind == "pct":
        return f"{value:.1f}%"
    if kind == "money":  # cents only where they matter: a card is narrow
        return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:,.2f}"
    return f"{value:,.2f}"


def decisions_from_file(path: Path) -> tuple[DecisionColumns, list[str]]:
    """A decisions.csv's report columns (with slot sums: the sidebar may set min_slot_sum)."""
    from sequencer.adapters.files.record_files import read_decision_columns

    return read_decision_columns([Path(path)], slot_sums=True)


def decisions_from_topic(bootstrap: str, topic: str, security: dict | None = None) -> tuple[DecisionColumns, list[str]]:
    """The decisions topic read to its end, a (stream, date) delivered twice counted once."""
    from sequencer.adapters.kafka.decision_log import read_decisions

    problems: list[str] = []
    decisions = asyncio.run(asyncio.wait_for(
        read_decisions(bootstrap, topic, security=security, problems=problems), TOPIC_TIMEOUT_S))
    return DecisionColumns.of(decisions), problems


def default_rules(config_path: Path | None) -> TradeRules:
    """The config file's ``rules`` table, the sidebar's starting values."""
    return load_rules(config_path)


def rules_from_sidebar(skip_weekdays: list[str], skip_days_of_month: list[int], skip_after_loss: bool,
                       min_slot_sum: float | None) -> TradeRules:
    return TradeRules.from_mapping({"skip_weekdays": list(skip_weekdays),
                                    "skip_days_of_month": [int(d) for d in skip_days_of_month],
                                    "skip_after_loss": bool(skip_after_loss), "min_slot_sum": min_slot_sum})


def report(columns: DecisionColumns, rules: TradeRules) -> PerformanceReport:
    return report_of_columns(columns, rules)


def scopes(report: PerformanceReport) -> list[str]:
    """What the section can show: all streams first, then each stream."""
    return [ALL, *report.streams]


def metrics_of(report: PerformanceReport, scope: str):
    return report.all if scope == ALL else report.streams[scope]


def curve_rows(columns: DecisionColumns, rules: TradeRules, names: list[str]) -> list[dict[str, Any]]:
    """Equity and drawdown over time in dollars, a row per (series, traded date)."""
    curves = equity_curves(columns, rules)
    return [{"date": point.date, "series": name, "equity $": point.equity_usd,
             "drawdown $": -point.drawdown_usd}
            for name in names if name in curves for point in curves[name]]


def breakdown_rows(report: PerformanceReport, scope: str, kind: str) -> list[dict[str, Any]]:
    """One breakdown (weekday, slot or year) of one scope, a row per group."""
    if kind not in BREAKDOWN_KINDS:
        raise ValueError(f"no breakdown {kind!r}")
    return [{kind: group, "trades": row.trades, "wins": row.wins, "losses": row.losses,
             "win rate %": round(row.win_rate, 1), "profit $": round(row.total_profit_usd, 2)}
            for group, row in report.by.get(scope, {}).get(kind, {}).items()]


def performance_csv_bytes(report: PerformanceReport) -> bytes:
    from sequencer.adapters.files.record_files import performance_csv

    return performance_csv(report).encode("utf-8")


def cached(store: dict, key: Any, load: Callable[[], Any]) -> Any:
    """``load()`` once per ``key`` (a file's path and mtime, or the topic and a refresh count)."""
    if key not in store:
        store.clear()
        store[key] = load()
    return store[key]
