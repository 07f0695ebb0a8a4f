"""``sequencer lag``: the lag is the number of unconsumed events, and 0 once a worker has run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sequencer.cli.main import main
from sequencer.codecs import encode_event
from sequencer.domain import SequencerConfig
from sequencer.lag import compute_lag
from sequencer.monitoring import catch_up_seconds, lag_document, rate_from_samples
from sequencer.sources import read_day_events
from tests.monitoring_worker import Worker, create_topics, produce_one_by_one, unique_names

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "sample"


def test_lag_document_is_pure_arithmetic() -> None:
    report = compute_lag("g", "t", {0: 5, 1: None, 2: 9}, {0: 0, 1: 2, 2: 0}, {0: 8, 1: 6, 2: 7})
    doc = lag_document(report, topic="t", group="g", rate=2.0, rate_source="samples",
                       measured_at="2025-01-01T00:00:00+00:00")
    assert [p["lag"] for p in doc["partitions"]] == [3, 4, 0]
    assert doc["total_lag"] == 7
    assert doc["catch_up_seconds"] == 3.5
    assert any("beyond the reported end" in note for note in doc["notes"])
    assert catch_up_seconds(0, None) == 0.0 and catch_up_seconds(5, None) is None
    assert rate_from_samples([(0.0, 10), (2.0, 30)]) == 10.0
    assert rate_from_samples([(0.0, 10)]) is None


def _lag_json(capsys, bootstrap: str, names, tmp_path: Path) -> dict:
    capsys.readouterr()
    status = main(["lag", "--json", "--bootstrap", bootstrap, "--topic", names.events,
                   "--config-name", names.config_name, "--state-dir", str(tmp_path / "state"),
                   "--api", "http://127.0.0.1:9"])
    assert status == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.broker
def test_lag_counts_unconsumed_events_then_zero_after_a_worker(kafka_bootstrap, tmp_path, capsys, monkeypatch):
    names = unique_names("lag")
    for variable, value in names.env().items():
        monkeypatch.setenv(variable, value)
    create_topics(kafka_bootstrap, names)
    events = [e for e in read_day_events([SAMPLE / "trades_ES.csv"], SequencerConfig()).events
              if e.date >= "2025-08-01"]
    per_partition = produce_one_by_one(kafka_bootstrap, names.events,
                                       [(e.stream.encode(), encode_event(e)) for e in events])

    doc = _lag_json(capsys, kafka_bootstrap, names, tmp_path)
    assert doc["group"] == names.group
    assert doc["total_lag"] == len(events)
    for row in doc["partitions"]:
        assert row["committed"] is None  # no worker has committed yet: lag = end - earliest
        assert row["lag"] == row["end"] - row["earliest"] == per_partition.get(row["partition"], 0)
    assert doc["streams_source"] == "checkpoints" and doc["streams"] == []

    with Worker(kafka_bootstrap, names, tmp_path / "state", tmp_path / "worker.log") as worker:
        deadline = time.monotonic() + 60
        while True:
            doc = _lag_json(capsys, kafka_bootstrap, names, tmp_path)
            if doc["total_lag"] == 0 and all(p["committed"] is not None
                                             for p in doc["partitions"] if p["end"]):
                break
            assert time.monotonic() < deadline, f"lag stayed {doc['total_lag']}: {worker.log()}"
            time.sleep(0.5)
    for row in doc["partitions"]:
        assert row["lag"] == 0 and row["note"] == ""
        assert row["committed"] == (row["end"] if row["end"] else row["committed"])

    # The worker wrote its checkpoints when it stopped: the freshness comes from them now.
    doc = _lag_json(capsys, kafka_bootstrap, names, tmp_path)
    assert {s["stream"]: s["last_processed_date"] for s in doc["streams"]} == {"ES1": events[-1].date,
                                                                              "ES2": events[-1].date}
    capsys.readouterr()
    assert main(["lag", "--bootstrap", kafka_bootstrap, "--topic", names.events, "--config-name",
                 names.config_name, "--state-dir", str(tmp_path / "state"), "--api", "http://127.0.0.1:9"]) == 0
    text = capsys.readouterr().out
    assert "total lag: 0" in text and "ES1" in text
