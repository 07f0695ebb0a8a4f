"""The dashboard's Performance section (Streamlit layout only; data in ``ui.performance``)."""

from __future__ import annotations

from typing import Any

from sequencer.adapters.kafka.connection import KafkaConnection
from ..domain import ALL, BREAKDOWN_KINDS, WEEKDAYS, SequencerError
from . import performance as perf

#: Metric cards per row: wider cards keep six-figure dollar amounts whole.
CARDS_PER_ROW = 6


def sidebar_rules(st: Any, defaults) -> Any:
    """Rules editable in the sidebar, starting from the config file's table."""
    st.subheader("Trade rules")
    weekdays = st.multiselect("Skip weekdays", list(WEEKDAYS), default=list(defaults.skip_weekdays),
                              key="rules_weekdays")
    days = st.multiselect("Skip days of month", list(range(1, 32)), default=list(defaults.skip_days_of_month),
                          key="rules_days")
    after_loss = st.checkbox("Skip the day after a loss", value=defaults.skip_after_loss, key="rules_after_loss")
    use_min = st.checkbox("Skip when every slot sum is below", value=defaults.min_slot_sum is not None,
                          key="rules_use_min")
    minimum = st.number_input("min slot sum", value=float(defaults.min_slot_sum or -4), step=1.0,
                              key="rules_min", disabled=not use_min)
    return perf.rules_from_sidebar(weekdays, days, after_loss, minimum if use_min else None)


def render(st: Any, alt: Any, pd: Any, options: Any, settings: Any) -> None:
    """The section: where the decisions come from, the cards, the curves, the breakdowns, the download."""
    st.subheader("Performance")
    state = st.session_state
    sources = []
    if options.decisions is not None:
        sources.append(f"file {options.decisions}")
    sources.append(f"decisions topic {settings.topic_decisions}")
    with st.sidebar:
        source = st.radio("Performance from", sources, key="perf_source")
        try:
            defaults = perf.default_rules(options.config)
        except SequencerError as error:
            st.error(str(error))
            defaults = perf.TradeRules()
        rules = sidebar_rules(st, defaults)

    store = state.setdefault("perf_cache", {})
    if state.get("refresh"):  # the sidebar's Refresh reads the decisions again
        store.clear()
    try:
        if source.startswith("file "):
            path = options.decisions
            if not path.exists():
                st.info(f"No decisions file at {path}.")
                return
            columns, problems = perf.cached(store, ("file", str(path), path.stat().st_mtime_ns),
                                            lambda: perf.decisions_from_file(path))
        else:
            key = ("topic", settings.bootstrap_servers, settings.topic_decisions)
            columns, problems = perf.cached(store, key, lambda: perf.decisions_from_topic(
                settings.bootstrap_servers, settings.topic_decisions, KafkaConnection.of(settings).aiokafka_kwargs()))
    except SequencerError as error:
        st.error(str(error))
        return
    except Exception as error:  # noqa: BLE001 - a broker that does not answer (or a timeout): say so
        st.error(f"decisions topic {settings.topic_decisions} at {settings.bootstrap_servers}: "
                 f"{type(error).__name__}: {error}")
        return
    for problem in problems[:5]:
        st.warning(f"skipped {problem}")
    if len(problems) > 5:
        st.warning(f"skipped {len(problems) - 5} more unreadable decisions")

    report = perf.report(columns, rules)
    if not report.streams:
        st.info(f"No decisions in {source}.")
        return
    render_report(st, alt, pd, report, columns, source)


def render_report(st: Any, alt: Any, pd: Any, report: Any, columns: Any, source: str) -> None:
    """The section's body over one report: cards, curves, breakdowns, the download
    (also the Sweep page's, over a configuration's replayed decisions)."""
    scope = st.selectbox("Performance of", perf.scopes(report), key="perf_scope",
                         format_func=lambda name: "all streams" if name == ALL else name)
    metrics = perf.metrics_of(report, scope)
    for start in range(0, len(perf.METRIC_CARDS), CARDS_PER_ROW):
        cards = perf.METRIC_CARDS[start:start + CARDS_PER_ROW]
        for column, (label, metric, kind) in zip(st.columns(len(cards)), cards):
            column.metric(label, perf.card_value(metrics, metric, kind))
    st.caption(f"{metrics.days:,} decisions from {source}; rules: {report.rules.to_dict()}. Profit is the "
               f"recorded outcome at the recorded target; other targets are not re-simulated.")

    names = [ALL, *report.streams] if scope == ALL else [scope]
    curve = pd.DataFrame(perf.curve_rows(columns, report.rules, names))
    left, right = st.columns(2)
    if curve.empty:
        st.caption("No trades under these rules.")
    else:
        curve["date"] = pd.to_datetime(curve["date"])
        for target, field, title in ((left, "equity $", "Equity $"), (right, "drawdown $", "Drawdown $")):
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
                st.dataframe(rows, hide_index=True, key=f"perf_by_{kind}")
    st.download_button("Download performance.csv", perf.performance_csv_bytes(report),
                       file_name="performance.csv", mime="text/csv", key="perf_download")
