"""The dashboard, headless (Streamlit's AppTest), against checkpoint files and no worker,
and against a running worker."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sequencer.adapters.kafka.embedded_broker import free_port
from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.domain import SequencerConfig, state_to_dict
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events
from sequencer.ui import data

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "sequencer" / "ui" / "app.py"
OLD_SAVED_AT = "2025-01-01T00:00:00+00:00"


@pytest.fixture
def checkpoints(tmp_path):
    """Checkpoints of ES1, ES2, NQ1 and NQ2 from data/sample up to 2025-03-31, and decisions.csv."""
    config = SequencerConfig()
    events = [e for e in read_day_events([ROOT / "data/sample/trades_ES.csv", ROOT / "data/sample/trades_NQ.csv"],
                                         config).events if e.date <= "2025-03-31"]
    decisions = []
    states = replay_events(events, config, on_decision=decisions.append).states
    store = CheckpointStore(tmp_path / "state", config, clock=lambda: OLD_SAVED_AT)
    store.save_all(states.values())
    csv = tmp_path / "decisions.csv"
    from sequencer.adapters.files.record_files import write_decisions_csv

    write_decisions_csv(csv, decisions)
    return store, states, csv


@pytest.fixture
def app(tmp_path, checkpoints, monkeypatch):
    _, _, csv = checkpoints
    # Nothing listens on this port: the UI runs without a worker.
    monkeypatch.setattr(sys, "argv", [str(APP), "--state-dir", str(tmp_path / "state"),
                                      "--api", f"http://127.0.0.1:{free_port()}", "--decisions", str(csv)])
    monkeypatch.delenv("SEQUENCER_API_TOKEN", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert not at.exception
    return at


def _metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _file_doc(store, stream, instrument) -> dict:
    return json.loads(store.path_for(stream, instrument).read_text())


def _state_frames(app) -> list:
    """The tables of stream states (the streams table and a stream's slot histories)."""
    return [d.value for d in app.dataframe
            if "stream" in d.value.columns or {"slot", "sum"} <= set(d.value.columns)]


def test_nothing_is_shown_until_previous_state_is_loaded(app, checkpoints):
    store, states, _ = checkpoints
    assert not _state_frames(app)   # the Performance section's tables come from decisions.csv, not states
    assert any("Load previous state" in info.value and "4 checkpoint" in info.value for info in app.info)

    app.checkbox(key="load_previous").check().run()
    assert not app.exception
    table = _state_frames(app)[0]
    assert list(table["stream"]) == ["ES1", "ES2", "NQ1", "NQ2"]
    for row in table.to_dict("records"):
        doc = _file_doc(store, row["stream"], row["stream"][:2])
        assert row["last_processed_date"] == doc["last_processed_date"]
        assert row["events_applied"] == doc["events_applied"]
        assert row["current_time"] == doc["current_time"]
        assert row["current_target"] == doc["current_target"]
        assert row["saved_at"] == doc["saved_at"] == OLD_SAVED_AT

    app.selectbox(key="stream").set_value("NQ2").run()
    doc = _file_doc(store, "NQ2", "NQ")
    shown = _metrics(app)
    assert shown["Next slot"] == doc["current_time"]
    assert shown["Next target"] == f"{doc['current_target']:g}"
    assert shown["Ladder step"] == str(doc["median_ladder_current_step"])
    assert shown["Days at level"] == str(doc["median_ladder_days_at_level"])
    assert shown["Last processed"] == doc["last_processed_date"]
    assert shown["No trade next"] == ("yes" if doc["no_trade_next"] else "no")
    slots = next(d.value for d in app.dataframe if {"slot", "sum"} <= set(d.value.columns))
    assert dict(zip(slots["slot"], slots["sum"])) == {s: sum(h) for s, h in doc["time_slot_histories"].items()}
    assert any("decisions of NQ2" in caption.value for caption in app.caption)


def test_save_state_writes_the_checkpoint_files(app, checkpoints):
    store, states, _ = checkpoints
    # An older-layout file (the desk's earlier tool) for ES1: Save writes the current layout.
    legacy = {k: v for k, v in _file_doc(store, "ES1", "ES").items()
              if k not in ("schema_version", "session", "config_id", "events_applied", "no_trade_next",
                           "source_offsets")}
    store.path_for("ES1", "ES").write_text(json.dumps(legacy))

    app.checkbox(key="load_previous").check().run()
    app.selectbox(key="stream").set_value("ES1").run()
    app.button(key="save").click().run()
    assert not app.exception
    doc = _file_doc(store, "ES1", "ES")
    assert doc["schema_version"] == 1 and doc["saved_at"] != OLD_SAVED_AT
    expected = state_to_dict(states["ES1"])
    for key in ("last_processed_date", "rolling_median_window", "time_slot_histories", "current_time",
                "current_target", "median_ladder_current_step", "median_ladder_days_at_level", "no_trade_next"):
        assert doc[key] == expected[key], key
    assert _file_doc(store, "ES2", "ES")["saved_at"] == OLD_SAVED_AT  # only the selected stream
    assert any("ES1: saved to" in info.value for info in app.sidebar.info)

    app.checkbox(key="all_streams").check().run()
    app.button(key="save").click().run()
    assert all(_file_doc(store, s, s[:2])["saved_at"] != OLD_SAVED_AT for s in states)
    shown = app.dataframe[0].value
    assert OLD_SAVED_AT not in set(shown["saved_at"])


def test_clear_state_asks_for_confirmation_then_deletes_the_file(app, checkpoints):
    store, _, _ = checkpoints
    app.checkbox(key="load_previous").check().run()
    app.selectbox(key="stream").set_value("NQ1").run()
    path = store.path_for("NQ1", "NQ")

    app.button(key="clear").click().run()
    assert path.exists()
    assert any("Clear the state of stream NQ1" in w.value for w in app.sidebar.warning)
    app.button(key="cancel_clear").click().run()
    assert path.exists() and not app.sidebar.warning

    app.button(key="clear").click().run()
    app.button(key="confirm_clear_button").click().run()
    assert not app.exception
    assert not path.exists()
    assert sorted(p.name for p in store.files()) == ["state_ES_ES1.json", "state_ES_ES2.json",
                                                      "state_NQ_NQ2.json"]
    assert list(app.dataframe[0].value["stream"]) == ["ES1", "ES2", "NQ2"]


def test_data_helpers():
    config = SequencerConfig()
    state = {"rolling_median_window": [float(i) for i in range(13)], "rolling_median_target": 10.0,
             "median_ladder_target": 12.5, "time_slot_histories": {"07:30": [1, -2], "08:00": []},
             "current_time": "08:00", "source_offsets": {"t:1": 5}, "instrument": "ES",
             "median_ladder_current_step": 1, "median_ladder_days_at_level": 3, "current_target": 10.0,
             "no_trade_next": False}
    rows = data.peak_window_rows(state, config)
    assert rows[0]["position"] == -12 and rows[-1]["position"] == 0 and rows[0]["rolling median"] == 6.0
    assert data.slot_rows(state)[0]["sum"] == -1 and data.slot_rows(state)[1]["next"]
    assert data.ladder_summary(state, config)["rung"] == 15.0
    lag = {"topic": "t", "partitions": [{"partition": 0, "lag": 4}, {"partition": 1, "lag": 7}]}
    assert data.partition_lag(state, lag) == 7
    assert data.partition_lag(state, None) is None
    options = data.parse_options(["--state-dir", "x", "--api", "http://h:1", "--unknown", "y"])
    assert options.api == "http://h:1" and options.state_dir == Path("x")


def test_lag_helpers():
    lag = {"partitions": [{"partition": 0, "committed": 3, "end": 9, "lag": 6, "status": "WARN", "note": ""}],
           "streams": [{"stream": "ES1", "days_behind": 2}],
           "decision_latency": {"p50": 0.012, "p99": 0.0456, "decisions": 300}}
    assert data.lag_partition_rows(lag) == [{"partition": 0, "committed": 3, "end": 9, "lag": 6, "status": "WARN"}]
    assert data.freshness_by_stream(lag)["ES1"]["days_behind"] == 2
    assert "p50 12 ms" in data.latency_line(lag) and "p99 46 ms" in data.latency_line(lag)
    assert "unknown" in data.latency_line({"decision_latency": None})


@pytest.mark.broker
def test_lag_section_shows_state_and_trading_days_behind_from_the_broker(tmp_path, checkpoints, monkeypatch,
                                                                       kafka_bootstrap):
    """No worker: the page reads the broker (--bootstrap), and shows ERR (lag, nobody in
    the group) and how many trading days each checkpointed stream is behind the topic."""
    from sequencer.app.codecs import encode_event
    from tests.support.kafka_io import produce_in_batches
    from tests.support.worker_process import WorkerSetup

    _, _, csv = checkpoints
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=2)
    setup.create_topics()
    events = [e for e in read_day_events([ROOT / "data/sample/trades_ES.csv"], SequencerConfig()).events
              if "2025-04-01" <= e.date <= "2025-04-10"]
    produce_in_batches(kafka_bootstrap, setup.topic_events, [(e.stream.encode(), encode_event(e)) for e in events])
    days = len({e.date for e in events if e.stream == "ES1"})

    monkeypatch.setenv("SEQUENCER_TOPIC_EVENTS", setup.topic_events)
    monkeypatch.setattr(sys, "argv", [str(APP), "--state-dir", str(tmp_path / "state"), "--bootstrap",
                                      kafka_bootstrap, "--api", f"http://127.0.0.1:{free_port()}",
                                      "--decisions", str(csv)])
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.checkbox(key="load_previous").check().run()
    assert not at.exception
    shown = _metrics(at)
    assert shown["Total lag (events)"] == str(len(events))
    assert shown["Lag state"] == "ERR"
    table = at.dataframe[0].value.set_index("stream")
    assert table.loc["ES1", "days_behind"] == days and table.loc["ES1", "last_published_date"] == events[-1].date
    assert table.loc["NQ1", "days_behind"] == 0  # nothing of NQ1 on the topic: nothing behind
    assert any("Decision latency: unknown" in c.value for c in at.caption)


@pytest.mark.broker
def test_with_a_worker_running_the_page_shows_its_streams_and_its_phase(tmp_path, monkeypatch, kafka_bootstrap):
    from tests.support.worker_process import WorkerSetup

    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=2)
    events = [e for e in read_day_events([ROOT / "data/sample/trades_ES.csv"], SequencerConfig()).events
              if "2025-04-01" <= e.date <= "2025-04-10"]
    with setup.start_worker(tmp_path / "worker.log") as worker:
        setup.wait_consumed(setup.publish(events), worker)
        monkeypatch.setattr(sys, "argv", [str(APP), "--state-dir", str(tmp_path / "state"),
                                          "--config-name", setup.name, "--api", worker.url])
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        assert not at.exception
        table = at.dataframe[0].value.set_index("stream")
        assert table.loc["ES1", "last_processed_date"] == max(e.date for e in events if e.stream == "ES1")
        assert _metrics(at)["Total lag (events)"] == "0"
        # The worker's /status, seen on the page: its phase, and no incident to warn of.
        assert any(c.value.startswith(("worker: idle for", "worker: folding for")) for c in at.caption), \
            [c.value for c in at.caption]
        assert not at.warning


# --- the Performance section -------------------------------------------------------------


def test_performance_section_shows_the_report_of_the_decisions_file(app, checkpoints):
    from sequencer.domain import TradeRules, performance_report
    from sequencer.adapters.files.record_files import read_decision_file
    from sequencer.ui.performance import card_value

    _, _, csv = checkpoints
    decisions = read_decision_file(csv).decisions
    expected = performance_report(decisions)
    shown = _metrics(app)
    assert shown["Trades"] == f"{expected.all.trades:,}"
    assert shown["Win rate"] == f"{expected.all.win_rate:.1f}%"
    assert shown["Profit $"] == card_value(expected.all, "total_profit_usd", "money")
    assert shown["Max drawdown $"] == card_value(expected.all, "max_drawdown_usd", "money")
    assert round(float(shown["Profit $"].replace(",", ""))) == round(expected.all.total_profit_usd)
    assert shown["Sharpe"] == card_value(expected.all, "sharpe", "ratio")
    assert shown["Profit (points)"] == "-"     # points of two instruments do not add (SPEC 8.3)
    weekday = next(d.value for d in app.dataframe if "weekday" in d.value.columns)
    assert list(weekday["weekday"]) == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert list(weekday["trades"]) == [b.trades for b in expected.by["all"]["weekday"].values()]

    # One stream, then a rule from the sidebar: the report is computed again.
    app.selectbox(key="perf_scope").set_value("ES1").run()
    assert _metrics(app)["Trades"] == f"{expected.streams['ES1'].trades:,}"
    app.multiselect(key="rules_weekdays").select("Mon").run()
    app.checkbox(key="rules_after_loss").check().run()
    assert not app.exception
    ruled = performance_report(decisions, TradeRules(skip_weekdays=("Mon",), skip_after_loss=True))
    assert _metrics(app)["Trades"] == f"{ruled.streams['ES1'].trades:,}" != f"{expected.streams['ES1'].trades:,}"


def test_performance_helpers(tmp_path):
    from sequencer.domain import ALL, TradeRules, performance_report
    from sequencer.adapters.files.record_files import performance_csv, write_decisions_csv
    from sequencer.ui import performance as perf

    from tests.unit.test_metrics import WEEK

    path = tmp_path / "d.csv"
    write_decisions_csv(path, WEEK)
    columns, problems = perf.decisions_from_file(path)
    rules = perf.rules_from_sidebar(["Mon"], [], False, None)
    assert problems == [] and rules == TradeRules(skip_weekdays=("Mon",))
    report = perf.report(columns, rules)
    assert report == performance_report(WEEK, rules)
    assert perf.performance_csv_bytes(report).decode() == performance_csv(report)
    assert perf.scopes(report) == [ALL, "ES1"]
    rows = perf.curve_rows(columns, rules, [ALL])
    assert [r["date"] for r in rows] == ["2025-01-07", "2025-01-08", "2025-01-09"]
    assert [r["equity $"] for r in rows] == [500.0, 1000.0, 1000.0]
    assert perf.breakdown_rows(report, "ES1", "year") == [
        {"year": "2025", "trades": 3, "wins": 2, "losses": 0, "win rate %": 100.0, "profit $": 1000.0}]
    assert perf.card_value(performance_report(WEEK * 1).all._replace(total_profit_usd=-12345.678),
                           "total_profit_usd", "money") == "-12,346"
    # 3 trades, +500, +500, 0: sample std > 0, no negative day -> Sortino undefined, shown as a dash.
    assert perf.card_value(report.all, "sortino", "ratio") == "-"
    assert perf.card_value(report.all, "wins", "results") == "2/0/1"
    assert perf.card_value(report.all, "total_profit_usd", "money") == "1,000.00"
