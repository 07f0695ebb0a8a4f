"""``sequencer lag``: the lag is the number of unconsumed events, and 0 once a worker has run."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sequencer.cli.main import main
from sequencer.app.codecs import encode_event
from sequencer.domain import SequencerConfig
from sequencer.app.lag_report import compute_lag
from sequencer.app.monitoring import catch_up_seconds, lag_document, rate_from_samples
from sequencer.adapters.files.sources import read_day_events
from tests.support.kafka_io import list_offsets_ends, produce_in_batches
from tests.support.worker_process import WorkerSetup

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"


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


def _lag_json(capsys, bootstrap: str, setup: WorkerSetup, tmp_path: Path, *extra: str) -> dict:
    capsys.readouterr()
    status = main(["lag", "--json", *extra, "--bootstrap", bootstrap, "--topic", setup.topic_events,
                   "--config-name", setup.name, "--state-dir", str(tmp_path / "state"),
                   "--api", "http://127.0.0.1:9"])
    assert status == 0
    return json.loads(capsys.readouterr().out)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.broker
def test_lag_counts_unconsumed_events_then_zero_after_a_worker(kafka_bootstrap, tmp_path, capsys, monkeypatch):
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=2, checkpoint_every_seconds=None)
    for variable, value in setup.topic_env().items():
        monkeypatch.setenv(variable, value)
    setup.create_topics()
    events = [e for e in read_day_events([SAMPLE / "trades_ES.csv"], SequencerConfig()).events
              if e.date >= "2025-08-01"]
    # Many records per batch, as `streamer publish` sends them.
    per_partition = produce_in_batches(kafka_bootstrap, setup.topic_events,
                                       [(e.stream.encode(), encode_event(e)) for e in events])
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        # The embedded broker's ListOffsets answer falls short here: what the lag must not trust.
        assert sum(list_offsets_ends(kafka_bootstrap, setup.topic_events).values()) < len(events)
    dates_of = {stream: sorted({e.date for e in events if e.stream == stream}) for stream in ("ES1", "ES2")}

    doc = _lag_json(capsys, kafka_bootstrap, setup, tmp_path)
    assert doc["group"] == setup.group
    assert doc["total_lag"] == len(events)
    for row in doc["partitions"]:
        assert row["committed"] is None  # no worker has committed yet: lag = end - earliest
        assert row["lag"] == row["end"] - row["earliest"] == per_partition.get(row["partition"], 0)
        assert row["status"] == ("ERR" if row["lag"] else "OK")  # lag, and nobody in the group
    assert doc["status"] == "ERR" and doc["members"] == 0
    assert doc["streams_source"] == "checkpoints"
    # Published, never decided: each stream has its entry, every trading date behind.
    assert {s["stream"]: (s["last_decided_date"], s["last_published_date"], s["days_behind"])
            for s in doc["streams"]} == {s: (None, d[-1], len(d)) for s, d in dates_of.items()}

    with setup.start_worker(tmp_path / "worker.log") as worker:
        deadline = time.monotonic() + 60
        while True:
            doc = _lag_json(capsys, kafka_bootstrap, setup, tmp_path)
            if doc["total_lag"] == 0 and all(p["committed"] is not None
                                             for p in doc["partitions"] if p["end"]):
                break
            assert time.monotonic() < deadline, f"lag stayed {doc['total_lag']}: {worker.log_tail()}"
            time.sleep(0.5)
        for row in doc["partitions"]:
            assert row["lag"] == 0 and row["note"] == "" and row["status"] == "OK"
            if row["partition"] in per_partition:  # an empty partition has nothing to commit
                assert row["committed"] == per_partition[row["partition"]]
        assert not any("beyond" in note for note in doc["notes"]) and doc["status"] == "OK"

        assert _get(worker.url + "/health/live")[0] == 200
        status, body = _get(worker.url + "/health/ready")
        assert status == 200 and json.loads(body) == {"ready": True, "partitions": [0, 1]}
        served = json.loads(_get(worker.url + "/lag")[1])
        assert served["total_lag"] == 0 and served["status"] == "OK"
        # The worker's own /status rides along: its phase, without reading its log.
        assert served["worker"]["phase"] in ("idle", "folding"), served["worker"]
        assert served["worker"]["owned_partitions"] == [0, 1]
        assert served["worker"]["partitions_read_again_for_checkpoints"] == 0
        capsys.readouterr()
        assert main(["lag", "--bootstrap", kafka_bootstrap, "--topic", setup.topic_events,
                     "--config-name", setup.name, "--state-dir", str(tmp_path / "state"),
                     "--api", worker.url]) == 0
        text = capsys.readouterr().out
        assert f"worker: {served['worker']['phase']} for " in text or "worker: folding for " in text, text
        assert "worker incidents" not in text
        assert served["decision_latency"]["decisions"] == len(events)
        assert 0 <= served["decision_latency"]["p50"] <= served["decision_latency"]["p99"] < 60
        assert {s["stream"]: (s["last_decided_date"], s["last_published_date"], s["days_behind"])
                for s in served["streams"]} == {s: (d[-1], d[-1], 0) for s, d in dates_of.items()}
        metrics = _get(worker.url + "/metrics")[1]
        assert f"sequencer_decision_latency_seconds_count {float(len(events))}" in metrics
        assert 'sequencer_consumer_lag_status{partition="0",topic="%s"} 0.0' % setup.topic_events in metrics
        assert 'sequencer_stream_days_behind{stream="ES1"} 0.0' in metrics

    # The worker wrote its checkpoints when it stopped: the freshness comes from them now.
    doc = _lag_json(capsys, kafka_bootstrap, setup, tmp_path)
    assert {s["stream"]: s["last_processed_date"] for s in doc["streams"]} == {"ES1": events[-1].date,
                                                                              "ES2": events[-1].date}
    assert all(s["days_behind"] == 0 for s in doc["streams"])
    capsys.readouterr()
    assert main(["lag", "--bootstrap", kafka_bootstrap, "--topic", setup.topic_events, "--config-name",
                 setup.name, "--state-dir", str(tmp_path / "state"), "--api", "http://127.0.0.1:9"]) == 0
    text = capsys.readouterr().out
    assert "total lag: 0" in text and "ES1" in text and "status: OK" in text


@pytest.mark.broker
def test_lag_window_sees_a_stopped_group_with_new_events(kafka_bootstrap, tmp_path, capsys, monkeypatch):
    """A group that committed once and then nothing while events arrive: STOP over the window."""
    from aiokafka import AIOKafkaConsumer

    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=2, checkpoint_every_seconds=None)
    for variable, value in setup.topic_env().items():
        monkeypatch.setenv(variable, value)
    setup.create_topics()
    events = [e for e in read_day_events([SAMPLE / "trades_ES.csv"], SequencerConfig()).events
              if e.date >= "2025-09-01"]
    produce_in_batches(kafka_bootstrap, setup.topic_events, [(e.stream.encode(), encode_event(e)) for e in events[:4]])

    async def consume_and_commit() -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(setup.topic_events, bootstrap_servers=kafka_bootstrap, group_id=setup.group,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        seen = 0
        while seen < 4:
            seen += sum(len(r) for r in (await consumer.getmany(timeout_ms=500)).values())
        await consumer.commit()
        return consumer

    loop = asyncio.new_event_loop()
    consumer = loop.run_until_complete(consume_and_commit())
    try:
        produce_in_batches(kafka_bootstrap, setup.topic_events, [(e.stream.encode(), encode_event(e)) for e in events[4:]])
        doc = _lag_json(capsys, kafka_bootstrap, setup, tmp_path, "--window", "3")
    finally:
        loop.run_until_complete(consumer.stop())
        loop.close()
    assert doc["total_lag"] == len(events) - 4
    assert doc["status_window_s"] == 3.0
    lagging = [p for p in doc["partitions"] if p["lag"]]
    assert lagging and all(p["status"] == "STOP" for p in lagging)  # a member, no commit for the window
    assert doc["status"] == "STOP"
