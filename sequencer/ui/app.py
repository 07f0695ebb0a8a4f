"""The Sequencer dashboard (Streamlit). Run it with ``sequencer ui``.

All data access is in `sequencer.ui.data`; this file only lays it out.
"""

from __future__ import annotations

import datetime as dt
import sys

import altair as alt
import pandas as pd
import streamlit as st

from sequencer.app.monitoring import worker_status_lines
from sequencer.ui.performance_section import render as render_performance
from sequencer.ui.data import (
    Dashboard,
    decisions_history,
    ladder_summary,
    lag_partition_rows,
    lag_point,
    latency_line,
    parse_options,
    peak_window_rows,
    slot_rows,
)

#: Points of lag kept for the chart (one per refresh).
LAG_SERIES_MAX = 500

st.set_page_config(page_title="Sequencer", layout="wide")

options = parse_options(sys.argv[1:])
dashboard = Dashboard(options)
state = st.session_state
state.setdefault("lag_series", [])
state.setdefault("messages", [])
state.setdefault("confirm_clear", False)


def _targets(all_streams: bool, streams: list[str]) -> list[str]:
    if all_streams:
        return streams
    selected = state.get("stream")
    return [selected] if selected else []


def on_save() -> None:
    view = dashboard.load(state.get("load_previous", False))
    targets = _targets(state.get("all_streams", False), [r["stream"] for r in view.rows])
    state.messages = dashboard.save(targets, view) if targets else ["no stream to save"]


def on_clear() -> None:
    state.confirm_clear = True


def on_confirm_clear() -> None:
    view = dashboard.load(state.get("load_previous", False))
    targets = _targets(state.get("all_streams", False), [r["stream"] for r in view.rows])
    state.messages = dashboard.clear(targets) if targets else ["no stream to clear"]
    state.confirm_clear = False


def on_cancel_clear() -> None:
    state.confirm_clear = False
    state.messages = ["clear cancelled"]


# --- sidebar: source and controls ----------------------------------------------------------
with st.sidebar:
    st.header("Sequencer")
    st.checkbox("Load previous state", key="load_previous",
                help="Show the checkpoint files (the state saved last) instead of the worker's live state.")
    st.button("Refresh", key="refresh")

view = dashboard.load(state.get("load_previous", False))
streams = [row["stream"] for row in view.rows]

with st.sidebar:
    st.caption(f"config **{dashboard.settings.config_name}** ({dashboard.config.config_id}) · "
               f"{'worker running' if view.mode == 'worker' else 'no worker'} · source: {view.source}")
    st.checkbox("All streams", key="all_streams", help="Save / clear every stream instead of the selected one")
    st.button("Save state", key="save", on_click=on_save)
    st.button("Clear state", key="clear", on_click=on_clear)
    if state.confirm_clear:
        scope = "ALL streams" if state.get("all_streams") else f"stream {state.get('stream') or '-'}"
        where = "in the worker (table + checkpoint)" if view.mode == "worker" else "(checkpoint files)"
        st.warning(f"Clear the state of {scope} {where}? This cannot be undone.")
        st.button("Confirm clear", key="confirm_clear_button", on_click=on_confirm_clear, type="primary")
        st.button("Cancel", key="cancel_clear", on_click=on_cancel_clear)
    for message in state.messages:
        st.info(message)

for problem in view.problems:
    st.error(problem)

# --- streams and lag ---------------------------------------------------------------------------
st.subheader("Streams")
if view.rows:
    table = pd.DataFrame(view.rows)[["stream", "last_processed_date", "age_days", "last_published_date",
                                     "days_behind", "events_applied", "current_time", "current_target",
                                     "no_trade_next", "partition_lag", "saved_at"]]
    st.dataframe(table, hide_index=True, key="streams_table")
elif view.mode == "checkpoints" and not state.get("load_previous"):
    count = len(dashboard.store.files())
    st.info(f"No worker answers at {dashboard.api.base_url}. Tick **Load previous state** to load "
            f"the {count} checkpoint file(s) in {dashboard.store.folder}.")
else:
    st.info(f"No streams ({view.source}).")

lag = view.lag
point = lag_point(lag, dt.datetime.now())
if point is not None:
    state.lag_series = (state.lag_series + [point])[-LAG_SERIES_MAX:]
st.subheader("Lag")
if lag is None:
    st.caption("Lag unknown: no worker answers and no --bootstrap was given.")
else:
    cols = st.columns(4)
    cols[0].metric("Lag state", lag.get("status") or "unknown")
    cols[1].metric("Total lag (events)", "unknown" if lag["total_lag"] is None else lag["total_lag"])
    rate = lag.get("processing_rate")
    cols[2].metric("Processing rate (events/s)", "-" if rate is None else f"{rate:,.1f}")
    eta = lag.get("catch_up_seconds")
    cols[3].metric("Time to catch up", "-" if eta is None else f"{eta:,.1f} s")
    st.caption(latency_line(lag))
    phase, *incidents = worker_status_lines(lag.get("worker")) or [None]
    if phase:
        st.caption(phase)
    for incident in incidents:
        st.warning(incident)
    partitions = lag_partition_rows(lag)
    if partitions:
        st.dataframe(pd.DataFrame(partitions), hide_index=True, key="lag_partitions")
    behind = [row for row in lag.get("streams", []) if row.get("days_behind")]
    if behind:
        st.caption("Streams behind (trading days published and not decided): "
                   + ", ".join(f"{row['stream']} {row['days_behind']}" for row in behind))
    for note in lag.get("notes", []):
        st.caption(f"note: {note}")
    if len(state.lag_series) > 1:
        series = pd.DataFrame(state.lag_series).set_index("time")[["total_lag"]]
        st.line_chart(series, height=180)
    else:
        st.caption("The lag chart fills as the page refreshes.")

render_performance(st, alt, pd, options, dashboard.settings)

# --- one stream ----------------------------------------------------------------------------------
if streams:
    if state.get("stream") not in streams:
        state.stream = streams[0]
    stream = st.selectbox("Stream", streams, key="stream")
    doc = view.states.get(stream)
    if doc is not None:
        ladder = ladder_summary(doc, dashboard.config)
        saved_at = doc.get("saved_at") or next((r["saved_at"] for r in view.rows if r["stream"] == stream), None)
        st.subheader(f"{stream} ({doc['instrument']} {doc['session']})")
        row1 = st.columns(4)
        row1[0].metric("Next slot", doc["current_time"])
        row1[1].metric("Next target", f"{doc['current_target']:g}")
        row1[2].metric("No trade next", "yes" if doc["no_trade_next"] else "no")
        row1[3].metric("Last processed", doc["last_processed_date"] or "-")
        row2 = st.columns(4)
        row2[0].metric("Ladder step", ladder["step"])
        row2[1].metric("Days at level", ladder["days_at_level"])
        row2[2].metric("Rolling median target", f"{doc['rolling_median_target']:g}")
        row2[3].metric("Ladder target", f"{doc['median_ladder_target']:g}")
        st.caption(f"events applied {doc['events_applied']} · target mode {ladder['target_mode']} · "
                   f"base {ladder['base']:g}, cap {ladder['cap']:g} · "
                   f"checkpoint saved at {saved_at or '-'} · config {doc['config_id']}")

        left, right = st.columns(2)
        with left:
            st.markdown("**Peak window** (oldest left) with the median and targets")
            rows = peak_window_rows(doc, dashboard.config)
            if rows:
                frame = pd.DataFrame(rows)
                bars = alt.Chart(frame).mark_bar(opacity=0.6).encode(
                    x=alt.X("position:O", title="day in window (0 = latest)"), y=alt.Y("peak:Q", title="peak"))
                levels = frame.melt(id_vars=["position"], value_vars=["rolling median", "rolling median target",
                                                                       "ladder target"],
                                    var_name="level", value_name="value").dropna()
                rules = alt.Chart(levels).mark_line(strokeWidth=2).encode(
                    x="position:O", y="value:Q", color=alt.Color("level:N", legend=alt.Legend(orient="bottom")))
                st.altair_chart(bars + rules, width="stretch")
            else:
                st.caption("No peaks yet.")
        with right:
            st.markdown("**Slot histories** (scores, oldest first)")
            st.dataframe(pd.DataFrame(slot_rows(doc)), hide_index=True, key="slots_table")

        st.markdown("**Targets over time**")
        if options.decisions is not None and options.decisions.exists():
            history = decisions_history(options.decisions, stream)
            if history.empty:
                st.caption(f"No decisions for {stream} in {options.decisions}.")
            else:
                st.line_chart(history[["peak", "rolling_median", "rolling_median_target",
                                       "median_ladder_target"]], height=260)
                st.caption(f"Last {len(history)} decisions of {stream} from {options.decisions}.")
        else:
            st.caption("A state keeps only the current window. Start the UI with --decisions FILE "
                       "(the decisions.csv of `sequencer run` or `replay`) to see the targets over time.")
