"""A configuration's Performance section on the Sweep page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from ..domain import Decision
from ..domain.metrics import PerformanceReport

#: The metric cards, as the desk's tool showed them.
CARDS = (("trades", "Trades", "{:,}"), ("win_rate", "Win rate", "{:.1f}%"),
         ("total_profit_usd", "Profit $", "{:,.2f}"), ("max_drawdown_usd", "Max drawdown $", "{:,.2f}"),
         ("sharpe", "Sharpe", "{:.2f}"), ("sortino", "Sortino", "{:.2f}"), ("calmar", "Calmar", "{:.2f}"),
         ("profit_factor", "Profit factor", "{:.2f}"))


def show_performance(report: PerformanceReport, decisions: list[Decision]) -> None:
    st.markdown("**Performance** (all streams)")
    everything = report.all.to_dict()
    columns = st.columns(len(CARDS))
    for column, (name, label, shape) in zip(columns, CARDS):
        value = everything[name]
        column.metric(label, "-" if value is None else shape.format(value))
    per_stream = pd.DataFrame({name: m.to_dict() for name, m in report.streams.items()}).T
    st.dataframe(per_stream, key="sweep_streams_metrics")
    equity = _equity(report, decisions)
    if not equity.empty:
        st.markdown("**Equity ($)**")
        st.line_chart(equity, height=260)


def _equity(report: PerformanceReport, decisions: list[Decision]) -> pd.DataFrame:
    from ..domain.metrics import taken_flags

    by_stream: dict[str, list[Decision]] = {}
    for decision in decisions:
        by_stream.setdefault(decision.stream, []).append(decision)
    rows = []
    for name, ordered in by_stream.items():
        for decision, taken in zip(ordered, taken_flags(ordered, report.rules)):
            if taken:
                rows.append((decision.date, name, decision.profit_usd))
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows, columns=["date", "stream", "usd"])
    frame["date"] = pd.to_datetime(frame["date"])
    daily = frame.pivot_table(index="date", columns="stream", values="usd", aggfunc="sum").fillna(0.0)
    daily["all"] = daily.sum(axis=1)
    return daily.cumsum()
