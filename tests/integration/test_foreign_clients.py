"""Day events from a Kafka client the team did not write: librdkafka (confluent-kafka).

The desk's own feeds may use librdkafka (confluent-kafka, kcat): other batching,
another default partitioner (CRC32, not murmur2), JSON values. The worker must
fold them exactly as the batch path does, and ``sequencer lag`` must still make
sense where a broker misreports the end of librdkafka batches (the embedded
broker does; see docs/benchmarks.md).
"""

from __future__ import annotations

import json

import pytest

from sequencer.cli.main import main
from sequencer.domain import SequencerConfig
from sequencer.app.replay import replay_events

from tests.integration.test_streaming import SAMPLE, _comparable
from tests.support.worker_process import WorkerSetup

confluent_kafka = pytest.importorskip("confluent_kafka")

pytestmark = pytest.mark.broker


def produce_with_librdkafka(bootstrap: str, topic: str, events, compression: str = "none") -> dict[int, int]:
    """JSON values keyed by stream, batched by librdkafka; partition -> next offset from the acks."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                                         "batch.num.messages": 500, "enable.idempotence": False,
                                         "compression.type": compression})
    ends: dict[int, int] = {}
    errors = []

    def acked(error, message) -> None:
        if error is not None:
            errors.append(error)
        else:
            ends[message.partition()] = max(ends.get(message.partition(), 0), message.offset() + 1)

    for event in events:
        while True:
            try:
                producer.produce(topic, key=event.stream.encode(), value=json.dumps(event.to_dict()).encode(),
                                 on_delivery=acked)
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors[:3]
    return ends


def test_events_from_librdkafka_fold_like_the_batch_path_and_lag_explains_the_end(
        kafka_bootstrap, tmp_path, capsys):
    from sequencer.adapters.files.sources import read_day_events

    events = read_day_events([SAMPLE / "trades_ES.csv", SAMPLE / "trades_CL.csv"], SequencerConfig()).events
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state")
    worker = setup.start_worker(tmp_path / "worker.log")
    try:
        ends = produce_with_librdkafka(kafka_bootstrap, setup.topic_events, events)
        assert sum(ends.values()) == len(events)
        setup.wait_consumed(ends, worker)
        live = setup.decisions()

        capsys.readouterr()
        assert main(["lag", "--json", "--bootstrap", kafka_bootstrap, "--topic", setup.topic_events,
                     "--config-name", setup.name, "--state-dir", str(setup.state_dir),
                     "--api", "http://127.0.0.1:9"]) == 0
        lag = json.loads(capsys.readouterr().out)
    finally:
        assert worker.stop() == 0, worker.log_tail()

    expected = []
    result = replay_events(events, SequencerConfig(), on_decision=expected.append)
    assert [d.to_dict() for d in live] == [d.to_dict() for d in sorted(expected, key=lambda d: (d.date, d.stream))]
    loaded, refused = setup.store().load_all()
    assert not refused and sorted(loaded) == sorted(result.states)
    for stream, checkpoint in loaded.items():
        assert _comparable(checkpoint.state) == _comparable(result.states[stream]), stream

    # Everything is consumed. Where the broker reports the true end, lag is 0;
    # where it reports less than the committed offset, the row says so plainly
    # instead of showing a negative or made-up lag.
    rows = {row["partition"]: row for row in lag["partitions"]}
    assert {p: rows[p]["committed"] for p in ends} == ends
    for partition, row in rows.items():
        assert row["lag"] == 0, row
        if row["committed"] is not None and row["committed"] > row["end"]:
            assert f"committed offset {row['committed']} is beyond the reported end {row['end']}" in row["note"]
        else:
            assert row["note"] == ""
    assert lag["total_lag"] == 0


@pytest.mark.parametrize("compression", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_batches_of_every_kafka_codec_are_folded(kafka_bootstrap, tmp_path, compression):
    """Producers set ``compression.type`` as their cluster's operators like (Java's
    and librdkafka's default is none, many production setups use lz4 or zstd).
    The worker decompresses every codec Kafka defines; it used to read only
    gzip, and a batch in another codec stopped its consumer."""
    from sequencer.adapters.files.sources import read_day_events

    events = [e for e in read_day_events([SAMPLE / "trades_ES.csv"], SequencerConfig()).events
              if e.stream == "ES1"][:200]
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=1)
    with setup.start_worker(tmp_path / "worker.log") as worker:
        ends = produce_with_librdkafka(kafka_bootstrap, setup.topic_events, events, compression)
        setup.wait_consumed(ends, worker, timeout_s=60)
        live = setup.decisions()
    expected = []
    replay_events(events, SequencerConfig(), on_decision=expected.append)
    assert [d.to_dict() for d in live] == [d.to_dict() for d in expected]
