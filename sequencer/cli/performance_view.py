"""Terminal tables of a ``PerformanceReport`` (``sequencer report``, the closing
summaries of ``replay`` and ``run --embedded``). Display only: figures are
rounded here for reading; ``--json`` and performance.csv carry them exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..domain import ALL, PerformanceReport
from sequencer.adapters.files.record_files import write_performance_csv


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _count(value: int) -> str:
    return str(value)


#: (heading, metric, format) of the report's table, the desk tool's figures.
REPORT_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("days", "days", _count),
    ("trades", "trades", _count),
    ("wins", "wins", _count),
    ("losses", "losses", _count),
    ("BE", "breakevens", _count),
    ("TIME", "timeouts", _count),
    ("NoTr", "no_trades", _count),
    ("win rate", "win_rate", _pct),
    ("profit pts", "total_profit", _ratio),
    ("profit $", "total_profit_usd", _money),
    ("avg $", "avg_profit_usd", _money),
    ("avg win $", "avg_win_usd", _money),
    ("avg loss $", "avg_loss_usd", _money),
    ("RR", "risk_reward", _ratio),
    ("PF", "profit_factor", _ratio),
    ("max DD $", "max_drawdown_usd", _money),
    ("max DD pts", "max_drawdown", _ratio),
    ("Sharpe", "sharpe", _ratio),
    ("Sortino", "sortino", _ratio),
    ("Calmar", "calmar", _ratio),
    ("time chg", "time_changes", _count),
)

#: The closing summary of ``replay`` and ``run --embedded``: the five figures the issue names.
SUMMARY_COLUMNS = tuple(c for c in REPORT_COLUMNS
                        if c[1] in ("trades", "win_rate", "total_profit_usd", "max_drawdown_usd", "sharpe"))

BREAKDOWN_COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("trades", "trades", _count),
    ("wins", "wins", _count),
    ("losses", "losses", _count),
    ("win rate", "win_rate", _pct),
    ("profit $", "total_profit_usd", _money),
)


def _table(headings: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headings)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headings, widths)))]
    for row in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def metrics_table(report: PerformanceReport, columns=REPORT_COLUMNS) -> str:
    """A row per stream and one for all streams."""
    named = [*report.streams.items(), (ALL, report.all)]
    rows = [[name, *(fmt(getattr(metrics, field)) for _, field, fmt in columns)] for name, metrics in named]
    return _table(["stream", *(heading for heading, _, _ in columns)], rows)


def summary_table(report: PerformanceReport) -> str:
    return metrics_table(report, SUMMARY_COLUMNS)


def breakdown_table(report: PerformanceReport, kind: str) -> str:
    """One table per kind (weekday, slot or year): a row per stream (and all) and group."""
    rows = []
    for name, kinds in report.by.items():
        for group, row in kinds[kind].items():
            rows.append([name, group, *(fmt(getattr(row, field)) for _, field, fmt in BREAKDOWN_COLUMNS)])
    return _table(["stream", kind, *(heading for heading, _, _ in BREAKDOWN_COLUMNS)], rows)


def rules_line(report: PerformanceReport) -> str:
    """The rules in force, in one line (``no trade rules`` when none)."""
    rules = report.rules
    parts = []
    if rules.skip_weekdays:
        parts.append("skip " + ", ".join(rules.skip_weekdays))
    if rules.skip_days_of_month:
        parts.append("skip days " + ", ".join(map(str, rules.skip_days_of_month)))
    if rules.skip_after_loss:
        parts.append("skip after a loss")
    if rules.min_slot_sum is not None:
        parts.append(f"skip when every slot sum < {rules.min_slot_sum}")
    return "trade rules: " + "; ".join(parts) if parts else "no trade rules"


def write_performance(out_dir: Path, report: PerformanceReport) -> str:
    """Write ``OUT/performance.csv``; the lines ``replay`` and ``run --embedded``
    end with: where it went, the rules, and trades, win rate, profit $, max
    drawdown $ and Sharpe per stream and for all."""
    path = Path(out_dir) / "performance.csv"
    write_performance_csv(path, report)
    return f"performance of these decisions -> {path} ({rules_line(report)})\n{summary_table(report)}"
