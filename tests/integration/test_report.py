"""``sequencer report`` and the performance.csv of ``replay``: the same numbers
from files, from the decisions topic and from the decisions in memory; bad
input named and skipped; old files told to replay again."""

from __future__ import annotations

import asyncio
import csv
import json
import math
import tempfile
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.cli.main import main
from sequencer.domain import (
    DECISION_FIELDS,
    METRIC_NAMES,
    TRADE_FIELDS,
    SequencerConfig,
    TradeRules,
    performance_report,
)
from sequencer.adapters.files.record_files import read_decision_columns, write_decisions_csv
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events

from tests.unit.test_metrics import RULES, WEEK, decision_logs
from tests.system.test_sources_and_replay import ROWS, SAMPLE, write_csv

CONFIG = SequencerConfig()
ES_SAMPLE = SAMPLE / "trades_ES.csv"


def report_json(capsys, *args) -> dict:
    assert main(["report", *map(str, args), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def in_memory_decisions(path: Path) -> list:
    """The decisions of an independent in-memory fold of ``path`` (no CSV in between)."""
    batch = read_day_events([path], CONFIG)
    found = []
    replay_events(batch.events, CONFIG, {}, on_decision=found.append)
    return found


def test_report_of_replay_equals_report_of_the_fold_in_memory(tmp_path: Path, capsys):
    assert main(["replay", str(ES_SAMPLE), "--out", str(tmp_path / "out"), "--state-dir", str(tmp_path / "st")]) == 0
    capsys.readouterr()
    expected = performance_report(in_memory_decisions(ES_SAMPLE)).to_dict()
    assert report_json(capsys, tmp_path / "out" / "decisions.csv") == expected
    assert report_json(capsys, tmp_path / "out") == expected          # a folder stands for its decisions.csv
    assert set(expected["streams"]) == {"ES1", "ES2"}
    assert expected["all"]["trades"] > 1000


def test_performance_csv_of_replay_holds_the_report_exactly(tmp_path: Path, capsys):
    rules = tmp_path / "rules.toml"
    rules.write_text('skip_weekdays = ["Fri"]\nmin_slot_sum = -3\n')
    assert main(["replay", str(ES_SAMPLE), "--out", str(tmp_path / "out"), "--state-dir", str(tmp_path / "st"),
                 "--rules", str(rules), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    # The closing summary: trades, win rate, profit $, max drawdown $ and Sharpe per stream.
    assert "performance.csv" in out and "skip Fri" in out
    assert "Sharpe" in out and "max DD $" in out and "win rate" in out
    assert [line.split()[0] for line in out.splitlines()[-3:]] == ["ES1", "ES2", "all"]
    expected = performance_report(in_memory_decisions(ES_SAMPLE), TradeRules(skip_weekdays=("Fri",), min_slot_sum=-3))
    with (tmp_path / "out" / "performance.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["stream"] for row in rows] == ["ES1", "ES2", "all"]
    assert list(rows[0]) == ["stream", *METRIC_NAMES]
    for row, metrics in zip(rows, [*expected.streams.values(), expected.all]):
        for name, value in metrics.to_dict().items():
            cell = row[name]
            assert (cell == "") if value is None else (float(cell) == value), (row["stream"], name)


def test_rules_from_the_config_file_and_breakdowns(tmp_path: Path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[rules]\nskip_after_loss = true\n')
    path = tmp_path / "d.csv"
    write_decisions_csv(path, WEEK)
    doc = report_json(capsys, path, "--config", config)
    assert doc["rules"]["skip_after_loss"] is True
    assert doc["streams"]["ES1"]["trades"] == 3    # WEEK minus 01-07 and 01-13 (after losses), 01-10 untraded
    assert main(["report", str(path), "--by", "weekday", "--by", "year"]) == 0
    out = capsys.readouterr().out
    assert "win rate" in out and "\nstream  weekday" in out and "\nstream  year" in out
    assert any(line.split()[:2] == ["ES1", "Mon"] for line in out.splitlines())


def test_stream_filter(tmp_path: Path, capsys):
    path = tmp_path / "d.csv"
    write_decisions_csv(path, in_memory_decisions(write_csv(tmp_path / "rows.csv", ROWS)))
    assert main(["report", str(path), "--stream", "NQ2", "ZZ9", "--json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert list(doc["streams"]) == ["NQ2"]
    assert doc["all"]["days"] == doc["streams"]["NQ2"]["days"] == 2
    assert "no decisions of stream ZZ9" in captured.err


# --- bad input ---------------------------------------------------------------------------


def test_a_file_written_before_trades_is_told_to_replay_again(tmp_path: Path, capsys):
    path = tmp_path / "old.csv"
    old_columns = [name for name in DECISION_FIELDS if name not in TRADE_FIELDS]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(old_columns)
        writer.writerow(["ES1", "ES", "2025-01-02", "07:30", "Win", "", '{"07:30":1}', "False", "07:30", "",
                         "10.0", "10.0", "0", "1", "10.0", "False", "why", "why"])
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert "old.csv" in err and "replay the events again" in err and "Traceback" not in err


def test_unparsable_rows_are_named_by_file_and_line_and_skipped(tmp_path: Path, capsys):
    path = tmp_path / "d.csv"
    write_decisions_csv(path, WEEK)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",500.0", ",lots")          # profit_usd of line 3 not a number
    lines[4] = ",".join(lines[4].split(",")[:5])              # line 5 cut short
    lines[5] = lines[5].replace("2025-01-10", "2025-13-10")   # line 6: no such date
    path.write_text("\n".join(lines) + "\n")
    assert main(["report", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    doc, err = json.loads(captured.out), captured.err
    assert f"{path}:3: profit_usd 'lots' is not a number" in err
    assert f"{path}:5: 5 cells, expected {len(DECISION_FIELDS)}" in err
    assert f"{path}:6: date '2025-13-10'" in err
    assert doc["streams"]["ES1"]["days"] == len(WEEK) - 3


@pytest.mark.parametrize("content", ["", ",".join(DECISION_FIELDS) + "\n"])
def test_an_empty_file_gives_an_empty_report(tmp_path: Path, capsys, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    doc = report_json(capsys, path)
    assert doc["streams"] == {} and doc["all"]["days"] == 0 and doc["all"]["sharpe"] is None
    assert main(["report", str(path)]) == 0
    assert "0 decisions" in capsys.readouterr().out


def test_bad_rules_are_refused_before_anything_is_read(tmp_path: Path, capsys):
    rules = tmp_path / "r.json"
    rules.write_text('{"skip_weekdays": ["Mon"], "skip_on_full_moon": true}')
    assert main(["report", str(tmp_path / "missing.csv"), "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert "skip_on_full_moon" in err and "missing.csv" not in err
    assert main(["replay", str(ES_SAMPLE), "--out", str(tmp_path / "o"), "--state-dir", str(tmp_path / "s"),
                 "--rules", str(rules)]) == 2
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()


def test_missing_input_is_a_clear_error(tmp_path: Path, capsys):
    assert main(["report", str(tmp_path / "nope.csv")]) == 2
    assert "no decisions file" in capsys.readouterr().err
    assert main(["report"]) == 2
    assert "--from-topic" in capsys.readouterr().err


# --- properties --------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(decision_logs(), RULES, st.data())
def test_report_of_decisions_split_over_files_equals_report_of_the_whole(log, rules, data):
    """Through the file reader (Arrow, sorted by stream and date) as the command reads them."""
    cuts = sorted(data.draw(st.lists(st.integers(0, len(log)), max_size=3)))
    shuffled = data.draw(st.permutations(log))
    parts = [shuffled[a:b] for a, b in zip([0] + cuts, cuts + [len(log)])]
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, part in enumerate(parts):
            paths.append(Path(folder) / f"part{i}.csv")
            write_decisions_csv(paths[-1], part)
        columns, problems = read_decision_columns(paths, slot_sums=rules.min_slot_sum is not None)
    assert problems == []
    from sequencer.domain import report_of_columns

    assert report_of_columns(columns, rules) == performance_report(log, rules)


# --- the decisions topic ------------------------------------------------------------------


@pytest.mark.broker
def test_report_from_the_topic_equals_report_of_replay(kafka_bootstrap, tmp_path: Path, capsys):
    """Decisions of the replay published to a topic, some twice (at-least-once), plus a
    foreign record: the report read back counts each (stream, date) once."""
    from aiokafka import AIOKafkaProducer

    from sequencer.app.codecs import encode_decision

    assert main(["replay", str(ES_SAMPLE), "--out", str(tmp_path / "out"), "--state-dir", str(tmp_path / "st")]) == 0
    capsys.readouterr()
    decisions = in_memory_decisions(ES_SAMPLE)
    topic = f"report-test-{uuid.uuid4().hex[:8]}"

    async def publish() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for decision in decisions + decisions[:50]:
                await producer.send(topic, key=decision.stream.encode(), value=encode_decision(decision))
            await producer.send(topic, key=b"x", value=b"not a decision")
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(publish())
    assert main(["report", "--from-topic", "--bootstrap", kafka_bootstrap, "--topic", topic, "--json"]) == 0
    captured = capsys.readouterr()
    from_topic = json.loads(captured.out)
    assert f"skipped {topic}[" in captured.err    # the foreign record is named, not fatal
    assert from_topic == report_json(capsys, tmp_path / "out" / "decisions.csv")
    assert math.isfinite(from_topic["all"]["total_profit_usd"])
