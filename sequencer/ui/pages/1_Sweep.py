"""The Sweep page: a sweep's ranked table, a heatmap over two grid keys, a row's Performance.

Streamlit lists the files of ``pages/`` beside app.py as pages of the
dashboard. All data access is in `sequencer.ui.sweep_data`; this file only
lays it out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from sequencer.domain import SequencerError
from sequencer.ui.sweep_data import DEFAULT_SWEEP, heatmap_frame, load_sweep, row_label, row_report
from sequencer.ui.performance_section import render_report

st.set_page_config(page_title="Sequencer sweep", layout="wide")


def _default_folder() -> Path:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--sweep", type=Path, default=DEFAULT_SWEEP)
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.sweep


st.subheader("Sweep")
folder = st.text_input("Sweep folder or sweep.csv", value=str(_default_folder()), key="sweep_path",
                       help="The --out folder of `sequencer sweep` (sweep.csv, sweep.json)")
try:
    table = load_sweep(Path(folder))
except (SequencerError, OSError, ValueError) as error:
    st.info(f"No sweep loaded: {error}")
    st.stop()

manifest = table.manifest
st.caption(f"{len(table.rows)} configurations ranked by **{manifest.get('rank_by', '?')}** · "
           f"{manifest.get('folds', '?')} folds shared · {manifest.get('day_events', '?')} day events · "
           f"inputs: {', '.join(Path(p).name for p in manifest.get('inputs', [])) or '?'}")
st.dataframe(table.rows, hide_index=False, key="sweep_table")

if len(table.grid_keys) >= 2:
    st.markdown("**Heatmap** (best value over the other grid keys)")
    cols = st.columns(3)
    default_metric = manifest.get("rank_by", table.metrics[0])
    metric = cols[0].selectbox("Metric", table.metrics, key="heat_metric",
                               index=table.metrics.index(default_metric) if default_metric in table.metrics else 0)
    x_key = cols[1].selectbox("Across", table.grid_keys, index=0, key="heat_x")
    y_key = cols[2].selectbox("Down", table.grid_keys, index=1, key="heat_y")
    if x_key == y_key:
        st.caption("Choose two different grid keys.")
    else:
        frame = heatmap_frame(table, metric, x_key, y_key)
        chart = alt.Chart(frame).mark_rect().encode(
            x=alt.X(f"{x_key}:O", title=x_key), y=alt.Y(f"{y_key}:O", title=y_key),
            color=alt.Color(f"{metric}:Q", title=metric),
            tooltip=[x_key, y_key, metric, "configurations"])
        text = chart.mark_text(baseline="middle").encode(
            text=alt.Text(f"{metric}:Q", format=",.2f"), color=alt.value("black"))
        st.altair_chart(chart + text, width="stretch")
elif table.grid_keys:
    st.caption("A heatmap needs a grid of two keys or more.")

choice = st.selectbox("Configuration", list(range(len(table.rows))), key="sweep_row",
                      format_func=lambda i: row_label(table, i))
try:
    point, columns, report = row_report(table, choice)
except (SequencerError, OSError) as error:
    st.error(f"Cannot replay this configuration: {error}")
    st.stop()
st.markdown("**Performance** of this configuration")
render_report(st, alt, pd, report, columns,
              f"config {point.config.config_id} replayed in memory (as `sequencer replay` writes it)")
