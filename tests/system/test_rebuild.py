"""`sequencer rebuild` and `sequencer verify` against a real worker's table.

Expected states come from `sequencer replay`'s code path (file -> pure fold);
the rebuild reads Kafka and writes the Faust changelog, and a worker started
afterwards must continue from what the rebuild wrote.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from sequencer.domain import SequencerConfig, state_to_dict
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events

from tests.support.recovery_helpers import SAMPLE, Setup, comparable, replay

pytestmark = pytest.mark.broker


def _produce_changelog(setup: Setup, stream: str, value: bytes, partitions: range) -> None:
    async def go() -> None:
        from aiokafka import AIOKafkaProducer
        producer = AIOKafkaProducer(bootstrap_servers=setup.bootstrap)
        await producer.start()
        try:
            for partition in partitions:
                await producer.send_and_wait(f"{setup.group}-stream-states-changelog", value=value,
                                             key=stream.encode(), partition=partition)
        finally:
            await producer.stop()
    asyncio.run(go())


def _checkpoint_docs(setup: Setup) -> dict[str, dict]:
    loaded, refused = setup.store().load_all()
    assert not refused
    return {s: comparable(cp.state) | {"source_offsets": dict(cp.state.source_offsets)} for s, cp in loaded.items()}


def test_verify_rebuild_and_restart(kafka_bootstrap, tmp_path):
    config = SequencerConfig()
    events = read_day_events(sorted(SAMPLE.glob("*.csv")), config).events
    head = [e for e in events if e.date < "2019-01-01"]
    tail = [e for e in events if "2019-01-01" <= e.date < "2019-04-01"]
    setup = Setup(kafka_bootstrap, tmp_path / "state", partitions=3)

    worker = setup.start_worker(tmp_path / "worker1.log")
    try:
        ends = setup.publish(head)
        setup.wait_consumed(ends, worker)
        running = setup.cli("rebuild", "--from", "log")
        assert running.returncode == 2, running.stdout + running.stderr
        assert "stop the worker first" in running.stderr
    finally:
        assert worker.stop() == 0, worker.log_tail()

    ok = setup.cli("verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "no drift" in ok.stdout

    # Damage: a wrong ES1 value in the table, a wrong NQ1 checkpoint, a stale ES2 copy.
    loaded, _ = setup.store().load_all()
    bad = state_to_dict(loaded["ES1"].state)
    bad["current_time"] = "08:00" if bad["current_time"] != "08:00" else "07:30"
    bad["events_applied"] += 5
    partition_es1 = int(next(iter(loaded["ES1"].state.source_offsets)).rsplit(":", 1)[1])
    _produce_changelog(setup, "ES1", json.dumps(bad).encode(), range(partition_es1, partition_es1 + 1))
    nq1 = json.loads(loaded["NQ1"].path.read_text())
    nq1["median_ladder_current_step"] += 1
    loaded["NQ1"].path.write_text(json.dumps(nq1))

    drift = setup.cli("verify")
    assert drift.returncode == 1, drift.stdout + drift.stderr
    lines = [line for line in drift.stdout.splitlines() if line.startswith("DRIFT")]
    assert any(line.startswith("DRIFT ES1 table: current_time expected") for line in lines), lines
    assert any(line.startswith("DRIFT ES1 table: events_applied expected") for line in lines), lines
    assert any("NQ1 checkpoint" in line and "median_ladder_current_step" in line for line in lines), lines
    assert not any(" ES2 " in f" {line} " for line in lines)
    only = setup.cli("verify", "--streams", "ES2", "YM1")
    assert only.returncode == 0 and "no drift: 2 streams" in only.stdout, only.stdout

    # A checkpoint further on than the log (a log shortened by retention, a corrected log):
    # the rebuild makes the log the truth, and says that the file moved back.
    ym1 = json.loads(loaded["YM1"].path.read_text())
    ym1["events_applied"] += 100
    loaded["YM1"].path.write_text(json.dumps(ym1))

    rebuilt = setup.cli("rebuild", "--from", "log", "--force")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert f"checkpoint of YM1 moved back from {ym1['last_processed_date']} ({ym1['events_applied']} events)" \
        in rebuilt.stdout + rebuilt.stderr, rebuilt.stdout + rebuilt.stderr
    assert setup.cli("verify").returncode == 0
    expected_head, _ = replay(head)
    after_log = _checkpoint_docs(setup)
    assert {s: {k: v for k, v in d.items() if k != "source_offsets"} for s, d in after_log.items()} == \
        {s: comparable(st) for s, st in expected_head.items()}

    # From the checkpoints + tail: same result, reading only the tail.
    from_cp = setup.cli("rebuild", "--from", "checkpoint", "--force")
    assert from_cp.returncode == 0, from_cp.stdout + from_cp.stderr
    assert _checkpoint_docs(setup) == after_log
    read_line = next(line for line in from_cp.stdout.splitlines() if line.startswith("read "))
    assert int(read_line.split()[1]) < len(head) // 10, read_line

    # As of a date: a separate folder, live checkpoints untouched.
    before = {p.name: p.read_bytes() for p in setup.store().files()}
    as_of = setup.cli("rebuild", "--from", "log", "--as-of", "2018-06-29")
    assert as_of.returncode == 0, as_of.stdout + as_of.stderr
    assert {p.name: p.read_bytes() for p in setup.store().files()} == before
    from sequencer.adapters.files.checkpoints import CheckpointStore
    past, refused = CheckpointStore(setup.store().folder / "as-of-2018-06-29", config).load_all()
    assert not refused
    want = replay_events(head, config, until="2018-06-29").states
    assert {s: comparable(cp.state) for s, cp in past.items()} == {s: comparable(st) for s, st in want.items()}

    # A worker without checkpoints continues from the table the rebuild wrote.
    setup.store().clear_all()
    worker = setup.start_worker(tmp_path / "worker2.log")
    try:
        more = setup.publish(tail)
        setup.wait_consumed(more, worker)
    finally:
        assert worker.stop() == 0, worker.log_tail()
    expected_all, _ = replay(head + tail)
    final = _checkpoint_docs(setup)
    assert {s: {k: v for k, v in d.items() if k != "source_offsets"} for s, d in final.items()} == \
        {s: comparable(st) for s, st in expected_all.items()}
    assert setup.cli("verify").returncode == 0

    # A checkpoint put back to the head's end (as a stale writer would): consistent
    # with the log at its offsets, so no drift, but behind it; verify must not exit 0.
    stale = next(name for name in sorted(before) if "_ES2." in name)
    (setup.store().folder / stale).write_bytes(before[stale])
    es2_tail = sum(1 for e in tail if e.stream == "ES2")
    assert es2_tail > 0
    behind = setup.cli("verify")
    assert behind.returncode == 3, behind.stdout + behind.stderr
    assert not any(line.startswith("DRIFT") for line in behind.stdout.splitlines()), behind.stdout
    assert any(line.startswith("BEHIND ES2 checkpoint") and f": {es2_tail} events behind the log" in line
               for line in behind.stdout.splitlines()), behind.stdout
    assert "1 of 8 checkpoints are behind the log (ES2;" in behind.stdout, behind.stdout


def test_a_rebuild_refuses_a_log_the_broker_deleted_records_of(kafka_bootstrap, tmp_path, monkeypatch):
    """Retention deleted the oldest days: a rebuild from what is left would write other
    states over the table's. The embedded broker cannot delete records (no
    DeleteRecords, no retention), so the log start it reports is moved by hand."""
    from aiokafka import AIOKafkaConsumer

    from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder
    from sequencer.adapters.kafka.rebuild import RebuildError, rebuild
    from sequencer.settings import Settings

    config = SequencerConfig()
    events = read_day_events([SAMPLE / "trades_ES.csv"], config).events[:50]
    setup = Setup(kafka_bootstrap, tmp_path / "state", partitions=1)
    setup.create_topics()
    setup.publish(events)
    real = AIOKafkaConsumer.beginning_offsets

    async def starts_at_5(self, partitions):
        return {tp: max(offset, 5) for tp, offset in (await real(self, partitions)).items()}

    monkeypatch.setattr(AIOKafkaConsumer, "beginning_offsets", starts_at_5)
    settings = Settings.from_env({**setup.topic_env(), "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                                  "SEQUENCER_CONFIG_NAME": setup.name, "SEQUENCER_STATE_DIR": str(setup.state_dir)})
    store = CheckpointStore(checkpoint_folder(setup.state_dir, setup.name), config)
    with pytest.raises(RebuildError, match=rf"{setup.topic_events}:0 offsets 0-4; .*Nothing was written"):
        asyncio.run(rebuild(settings, config, store, check_group=False))
    assert not list(store.files())
