"""The Sweep page, headless (Streamlit's AppTest), over a real sweep of the sample data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from sequencer.domain import SequencerConfig, SequencerError
from sequencer.domain.metrics import performance_report
from sequencer.domain.trade_rules import TradeRules
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events
from sequencer.ui import sweep_data
from sequencer.ui.performance import card_value

from tests.system.test_sources_and_replay import SAMPLE, sequencer_command

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "sequencer" / "ui" / "pages" / "1_Sweep.py"
INPUTS = [SAMPLE / "trades_ES.csv", SAMPLE / "trades_NQ.csv"]


@pytest.fixture(scope="module")
def sweep_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui") / "sweep"
    done = subprocess.run([*sequencer_command(), "sweep", *map(str, INPUTS), "--out", str(folder),
                           "--grid", "depth=9,13", "--grid", "median_position=5,7",
                           "--grid", "rules.skip_weekdays=none,Mon+Fri", "--jobs", "1"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder


def test_heatmap_is_the_best_over_the_other_keys(sweep_folder):
    table = sweep_data.load_sweep(sweep_folder / "sweep.csv")
    assert table.grid_keys == ["depth", "median_position", "rules.skip_weekdays"]
    frame = sweep_data.heatmap_frame(table, "total_profit_usd", "depth", "median_position")
    assert len(frame) == 4 and set(frame["configurations"]) == {2}
    rows = table.rows
    for _, cell in frame.iterrows():
        same = rows[(rows["depth"] == cell["depth"]) & (rows["median_position"] == cell["median_position"])]
        assert cell["total_profit_usd"] == max(same["total_profit_usd"])
    with pytest.raises(SequencerError):
        sweep_data.heatmap_frame(table, "sharpe", "depth", "depth")


def test_a_row_replays_to_its_own_metrics(sweep_folder):
    table = sweep_data.load_sweep(sweep_folder)
    index = int(table.rows.index[table.rows["rules.skip_weekdays"] == "Mon+Fri"][0])
    point, columns, report = sweep_data.row_report(table, index)
    row = table.rows.iloc[index]
    config = SequencerConfig(depth=int(row["depth"]), median_position=int(row["median_position"]))
    assert point.config == config and point.rules == TradeRules(skip_weekdays=("Mon", "Fri"))
    expected = []
    replay_events(read_day_events(INPUTS, config).events, config, on_decision=expected.append)
    assert list(columns.profit_usd) == [d.profit_usd for d in expected]
    assert report == performance_report(expected, point.rules)
    assert report.all.total_profit_usd == row["total_profit_usd"]


def test_a_folder_without_a_sweep_says_so(tmp_path):
    with pytest.raises(SequencerError, match="no such file"):
        sweep_data.load_sweep(tmp_path)


def money(value: float) -> str:
    """A dollar card as the Performance section writes it, from the sweep table's value."""
    return card_value(SimpleNamespace(total_profit_usd=value), "total_profit_usd", "money")


def test_the_page_shows_table_heatmap_and_the_chosen_rows_performance(sweep_folder, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(PAGE), "--sweep", str(sweep_folder)])
    at = AppTest.from_file(str(PAGE), default_timeout=120)
    at.run()
    assert not at.exception
    table = sweep_data.load_sweep(sweep_folder)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Profit $"] == money(table.rows.iloc[0]["total_profit_usd"])
    charts = [chart.proto.spec for chart in at.get("vega_lite_chart")]
    assert any('"rect"' in spec and "median_position" in spec for spec in charts)  # the heatmap
    last = len(table.rows) - 1
    at.selectbox(key="sweep_row").set_value(last).run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Profit $"] == money(table.rows.iloc[last]["total_profit_usd"])
    assert shown["Trades"] == f"{int(table.rows.iloc[last]['trades']):,}"
    assert {"**By weekday**", "**Equity $** over time"} <= {m.value for m in at.markdown}
    assert at.get("download_button")


def test_the_page_without_a_sweep_explains(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(PAGE), "--sweep", str(tmp_path / "none")])
    at = AppTest.from_file(str(PAGE), default_timeout=60)
    at.run()
    assert not at.exception
    assert any("No sweep loaded" in info.value for info in at.info)
