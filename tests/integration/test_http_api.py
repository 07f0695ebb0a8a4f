"""The worker's HTTP API against a real worker process on the session broker.

Expected values come from the batch replay of the same events (states) and
from counting what the test itself published (metrics).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import msgpack
import pytest

from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder
from sequencer.app.codecs import encode_event
from sequencer.domain import SequencerConfig, state_to_dict
from sequencer.domain.state import STATE_KEYS
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events
from sequencer.adapters.faust.live_state import changelog_partition
from sequencer.adapters.http.views import _Api
from tests.support.kafka_io import produce_one_by_one
from tests.support.worker_process import WorkerSetup

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
TOKEN = "test-token-3f9a"
FIRST_DATE = "2025-07-01"

pytestmark = pytest.mark.broker


def http(method: str, url: str, token: str | None = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def get_json(url: str):
    status, kind, body = http("GET", url)
    assert status == 200 and kind.startswith("application/json"), (status, body)
    return json.loads(body)


def metrics(url: str) -> dict[str, float]:
    status, kind, body = http("GET", url + "/metrics")
    assert status == 200 and kind.startswith("text/plain"), (status, kind)
    found = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


@pytest.fixture(scope="module")
def live(kafka_bootstrap, tmp_path_factory):
    """A worker that has folded a slice of data/sample plus bad, duplicate and late events."""
    tmp = tmp_path_factory.mktemp("http")
    setup = WorkerSetup(kafka_bootstrap, tmp / "state", partitions=2, token=TOKEN, checkpoint_every_seconds=None)
    config = SequencerConfig()
    events = [e for e in read_day_events(sorted(SAMPLE.glob("*.csv")), config).events if e.date >= FIRST_DATE]
    es1 = [e for e in events if e.stream == "ES1"]
    nq2 = [e for e in events if e.stream == "NQ2"]
    bad = {**es1[-1].to_dict(), "date": "2025-12-01"}
    bad["slots"] = {slot: {**outcome, "result": "Maybe"} for slot, outcome in bad["slots"].items()}
    extra = [
        (b"ES1", msgpack.packb(bad)),                        # dead letter: bad result
        (b"ES1", b"\xc1 not msgpack"),                       # dead letter: malformed msgpack
        (b"ES1", encode_event(es1[0])),                      # dead letter: out of order
        (b"NQ2", encode_event(nq2[-1])),                     # duplicate of the last applied day
    ]
    worker = setup.start_worker(tmp / "worker.log")
    try:
        worker.wait_ready()
        per_partition = produce_one_by_one(
            kafka_bootstrap, setup.topic_events, [(e.stream.encode(), encode_event(e)) for e in events] + extra)
        published = sum(per_partition.values())
        deadline = time.monotonic() + 60
        while metrics(worker.url).get("sequencer_records_total", 0) < published:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.3)
        while get_json(worker.url + "/lag")["total_lag"] != 0:  # until the worker has committed
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.5)
        expected = replay_events(events, config)
        yield SimpleNamespace(url=worker.url, worker=worker, setup=setup, events=events, expected=expected,
                              published=published, per_partition=per_partition, tmp=tmp, config=config,
                              bootstrap=kafka_bootstrap,
                              store=CheckpointStore(checkpoint_folder(tmp / "state", setup.name), config))
    finally:
        worker.stop()


def _without_offsets(doc: dict) -> dict:
    doc = dict(doc)
    doc.pop("source_offsets")
    return doc


def test_streams_and_states_equal_the_batch_replay(live):
    rows = get_json(live.url + "/streams")
    expected = live.expected.states
    assert [row["stream"] for row in rows] == sorted(expected)
    today = dt.date.today()
    for row in rows:
        state = expected[row["stream"]]
        assert row["last_processed_date"] == state.last_processed_date
        assert row["age_days"] == (today - dt.date.fromisoformat(state.last_processed_date)).days
        assert row["events_applied"] == state.events_applied
        assert (row["current_time"], row["current_target"], row["no_trade_next"]) == (
            state.current_time, state.current_target, state.no_trade_next)
        assert "saved_at" in row

    for stream, state in expected.items():
        doc = get_json(f"{live.url}/streams/{stream}")
        assert list(doc) == [k for k in STATE_KEYS if k != "saved_at"]  # SPEC 4, no saved_at: not a checkpoint
        assert _without_offsets(doc) == _without_offsets(state_to_dict(state))
        assert [k.rpartition(":")[0] for k in doc["source_offsets"]] == [live.setup.topic_events]

    status, kind, body = http("GET", live.url + "/streams/ZZ9")
    assert status == 404 and kind.startswith("application/json") and "ZZ9" in json.loads(body)["error"]


def test_lag_endpoint_matches_the_cli_and_the_published_counts(live):
    doc = get_json(live.url + "/lag")
    assert doc["group"] == live.setup.group and doc["topic"] == live.setup.topic_events
    assert doc["total_lag"] == 0
    assert doc["rate_source"] == "worker" and doc["processing_rate"] >= 0
    for row in doc["partitions"]:
        assert set(row) >= {"topic", "partition", "committed", "end", "lag"}
        assert row["end"] == live.per_partition.get(row["partition"], 0)
        if row["end"]:
            assert row["committed"] == row["end"]
    assert {s["stream"]: s["last_processed_date"] for s in doc["streams"]} == {
        s: st.last_processed_date for s, st in live.expected.states.items()}

    cli = subprocess.run(
        [sys.executable, "-m", "sequencer.cli.main", "lag", "--json", "--bootstrap", live.bootstrap,
         "--topic", live.setup.topic_events, "--config-name", live.setup.name,
         "--state-dir", str(live.tmp / "state"), "--api", live.url],
        capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    from_cli = json.loads(cli.stdout)
    assert set(from_cli) == set(doc)
    assert from_cli["partitions"] == doc["partitions"]
    assert from_cli["streams_source"] == "worker" and from_cli["streams"] == doc["streams"]


def test_metrics_count_what_was_published(live):
    found = metrics(live.url)
    assert found["sequencer_records_total"] == live.published
    assert found["sequencer_events_applied_total"] == live.expected.applied == len(live.events)
    assert found['sequencer_dead_letters_total{reason="bad result"}'] == 1
    assert found['sequencer_dead_letters_total{reason="malformed msgpack"}'] == 1
    assert found['sequencer_dead_letters_total{reason="out of order"}'] == 1
    assert found["sequencer_duplicates_total"] == 1
    assert found["sequencer_redeliveries_total"] == 0
    assert found["sequencer_replaced_offsets_total"] == 0  # one log all along
    assert found["sequencer_consumer_lag_total"] == 0
    lag_rows = {k: v for k, v in found.items() if k.startswith("sequencer_consumer_lag{")}
    assert len(lag_rows) == 2 and set(lag_rows.values()) == {0}
    assert "sequencer_processing_rate" in found
    assert sum(v for k, v in found.items() if k.startswith("sequencer_worker_phase{")) == 1
    assert found['sequencer_worker_phase{phase="idle"}'] + found['sequencer_worker_phase{phase="folding"}'] == 1
    for stream, state in live.expected.states.items():
        assert found[f'sequencer_stream_events_applied{{stream="{stream}"}}'] == state.events_applied


def test_post_requires_the_token(live):
    for token in (None, "wrong", ""):
        status, kind, body = http("POST", live.url + "/streams/ES1/checkpoint", token)
        assert status == 403 and kind.startswith("application/json"), (token, status)
        assert json.loads(body)["error"]
    assert not live.store.files() or all("ES1" not in p.name for p in live.store.files())
    status, _, _ = http("POST", live.url + "/streams/ES1/reset", "wrong")
    assert status == 403
    assert get_json(live.url + "/streams/ES1")["stream"] == "ES1"


def test_no_token_configured_refuses_every_post():
    def api(token):
        return _Api(None, SimpleNamespace(settings=SimpleNamespace(api_token=token)))

    request = SimpleNamespace(headers={"Authorization": "Bearer anything"})
    assert "no API token" in api(None).authorized(request)
    assert api("anything").authorized(request) is None
    assert api("other").authorized(request) == "invalid API token"
    assert "missing" in api("x").authorized(SimpleNamespace(headers={}))


def test_changelog_partition_follows_the_source_partition():
    state = SimpleNamespace(source_offsets={"other:3": 1, "events:2": 10})
    assert changelog_partition(state, "ES1", "events", 4) == 2
    from aiokafka.partitioner import DefaultPartitioner

    assert changelog_partition(None, "ES1", "events", 4) == DefaultPartitioner()(b"ES1", [0, 1, 2, 3], [])


def test_checkpoint_then_reset_a_stream(live):
    status, _, body = http("POST", live.url + "/streams/ES1/checkpoint", TOKEN)
    assert status == 200, body
    answer = json.loads(body)
    path = Path(answer["path"])
    assert path.exists() and answer["saved_at"]
    checkpoint = live.store.load("ES1", "ES")
    assert state_to_dict(checkpoint.state) == get_json(live.url + "/streams/ES1")
    rows = {row["stream"]: row for row in get_json(live.url + "/streams")}
    assert rows["ES1"]["saved_at"] == answer["saved_at"]
    found = metrics(live.url)
    assert 0 <= found['sequencer_checkpoint_age_seconds{stream="ES1"}'] < 60

    status, _, body = http("POST", live.url + "/streams/ES1/reset", TOKEN)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["removed_checkpoints"] == [str(path)] and not path.exists()
    assert http("GET", live.url + "/streams/ES1")[0] == 404
    assert "ES1" not in {row["stream"] for row in get_json(live.url + "/streams")}
    assert http("POST", live.url + "/streams/ES1/reset", TOKEN)[0] == 404

    # The stream starts over: the next day is its first applied event.
    later = {**live.events[-1].to_dict(), "stream": "ES1", "instrument": "ES", "session": "S1",
             "date": "2025-12-01",
             "slots": {"07:30": {"result": "Win", "peak": 12.0}, "08:00": {"result": "Loss"}}}
    produce_one_by_one(live.bootstrap, live.setup.topic_events, [(b"ES1", msgpack.packb(later))])
    deadline = time.monotonic() + 30
    while http("GET", live.url + "/streams/ES1")[0] != 200:
        assert time.monotonic() < deadline, live.worker.log_tail()
        time.sleep(0.3)
    doc = get_json(live.url + "/streams/ES1")
    assert doc["events_applied"] == 1 and doc["last_processed_date"] == "2025-12-01"
    assert doc["time_slot_histories"]["07:30"] == [1] and doc["time_slot_histories"]["09:00"] == []


def test_post_checkpoint_says_why_a_file_cannot_be_written(live):
    # A folder where the file should be (as a read-only folder or a full disk would, the
    # write fails with an OS error): a clear 503 naming the file, not a bare 500.
    target = live.store.path_for("CL1", "CL")
    target.unlink(missing_ok=True)
    target.mkdir(parents=True)
    try:
        status, kind, body = http("POST", live.url + "/streams/CL1/checkpoint", TOKEN)
    finally:
        target.rmdir()
    assert status == 503 and kind.startswith("application/json"), (status, body)
    message = json.loads(body)["error"]
    assert "checkpoint of CL1 not written" in message and str(target) in message


def test_post_checkpoint_refuses_to_replace_a_newer_file(live):
    from sequencer.domain import state_from_dict

    served = state_from_dict(get_json(live.url + "/streams/CL2"), live.store.config)
    newer = served._replace(events_applied=served.events_applied + 100)
    path = live.store.path_for("CL2", "CL")
    path.unlink(missing_ok=True)
    live.store.save(newer)
    before = path.read_bytes()
    try:
        status, _, body = http("POST", live.url + "/streams/CL2/checkpoint", TOKEN)
        assert status == 409, body
        assert "not replaced" in json.loads(body)["error"]
        assert path.read_bytes() == before
    finally:
        path.unlink()


def test_status_names_the_phase_and_the_owned_partitions(live):
    doc = get_json(live.url + "/status")
    assert doc["phase"] in {"folding", "idle"}, doc
    assert doc["owned_partitions"] and doc["reason"]
