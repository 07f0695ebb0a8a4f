"""A sweep row's Performance section: the dashboard's section, over that row's decisions.

The figures come from ``sequencer.ui.performance`` (the helpers of the
dashboard's Performance section: cards, equity and drawdown curves,
breakdowns, performance.csv); only the source differs: the row's
configuration replayed in memory instead of a decisions file or the topic,
and the row's own rules instead of the sidebar's.
"""

from __future__ import annotations

from typing import Any

from ..domain import ALL, BREAKDOWN_KINDS, DecisionColumns, PerformanceReport
from . import performance as perf


def show_performance(st: Any, alt: Any, pd: Any, report: PerformanceReport, columns: DecisionColumns) -> None:
    st.markdown("**Performance** of this configuration")
    scope = st.selectbox("Performance of", perf.scopes(report), key="sweep_perf_scope",
                         format_func=lambda name: "all streams" if name == ALL else name)
    metrics = perf.metrics_of(report, scope)
    for start in range(0, len(perf.METRIC_CARDS), 8):
        cards = perf.METRIC_CARDS[start:start + 8]
        for column, (label, metric, kind) in zip(st.columns(len(cards)), cards):
            column.metric(label, perf.card_value(metrics, metric, kind))
    st.caption(f"rules: {report.rules.to_dict()}. Profit is the recorded outcome at the recorded "
               f"target; other targets are not re-simulated.")
    names = [ALL, *report.streams] if scope == ALL else [scope]
    curve = pd.DataFrame(perf.curve_rows(columns, report.rules, names))
    if curve.empty:
        st.caption("No trades under these rules.")
    else:
        curve["date"] = pd.to_datetime(curve["date"])
        for target, field, title in zip(st.columns(2), ("equity $", "drawdown $"), ("Equity $", "Drawdown $")):
            with target:
                st.markdown(f"**{title}** over time")
                chart = alt.Chart(curve).mark_line(strokeWidth=1.5).encode(
                    x=alt.X("date:T", title=None), y=alt.Y(f"{field}:Q", title=title),
                    color=alt.Color("series:N", legend=alt.Legend(orient="bottom")))
                st.altair_chart(chart, width="stretch")
    for column, kind in zip(st.columns(len(BREAKDOWN_KINDS)), BREAKDOWN_KINDS):
        with column:
            st.markdown(f"**By {kind}**")
            rows = pd.DataFrame(perf.breakdown_rows(report, scope, kind))
            if not rows.empty:
                st.dataframe(rows, hide_index=True, key=f"sweep_perf_by_{kind}")
    st.download_button("Download performance.csv", perf.performance_csv_bytes(report),
                       file_name="performance.csv", mime="text/csv", key="sweep_perf_download")
