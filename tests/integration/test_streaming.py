"""The live path on a real broker: a worker process folds published events.

The expected values come from the batch path (`sequencer replay`'s
``read_day_events`` + ``replay_events``), which shares only the pure fold with
the worker: Kafka, Faust, the table and the checkpoints are all under test.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import msgpack
import pytest

from sequencer.domain import SequencerConfig, state_to_dict
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events
from sequencer.adapters.faust.worker import STALL_CHECK_S

from tests.support.worker_process import WorkerSetup

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def sample_events():
    batch = read_day_events(sorted(SAMPLE.glob("*.csv")), SequencerConfig())
    assert batch.events and not batch.rejects
    return batch.events


def _comparable(state) -> dict:
    doc = state_to_dict(state)
    doc.pop("source_offsets")
    return doc


def _fold_and_stop(setup: WorkerSetup, events, log_path: Path) -> None:
    """A worker folds ``events`` and stops cleanly (its stop writes every checkpoint)."""
    with setup.start_worker(log_path) as worker:
        setup.wait_consumed(setup.publish(events), worker)
        assert worker.stop() == 0, worker.log_tail()


def _checkpoint_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.glob("*.json")}


def _replay(events):
    decisions = []
    result = replay_events(events, SequencerConfig(), on_decision=decisions.append)
    return result.states, decisions


@pytest.mark.parametrize("direct_intake", ["false", "true"], ids=["faust-stream", "direct-intake"])
def test_live_decisions_and_states_equal_batch_replay(kafka_bootstrap, tmp_path, sample_events, direct_intake):
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", extra_env={"SEQUENCER_DIRECT_INTAKE": direct_intake})
    worker = setup.start_worker(tmp_path / "worker.log")
    try:
        ends = setup.publish(sample_events)
        setup.wait_consumed(ends, worker)
        live_decisions = setup.decisions()
    finally:
        assert worker.stop() == 0, worker.log_tail()

    expected_states, expected_decisions = _replay(sample_events)
    assert len(live_decisions) == len(sample_events)
    assert [d.to_dict() for d in live_decisions] == [
        d.to_dict() for d in sorted(expected_decisions, key=lambda d: (d.date, d.stream))]

    loaded, refused = setup.store().load_all()
    assert not refused
    assert sorted(loaded) == sorted(expected_states)
    for stream, checkpoint in loaded.items():
        assert _comparable(checkpoint.state) == _comparable(expected_states[stream]), stream

    # Checkpoints carry the source offsets: per partition, the furthest stream
    # position is exactly the end of what was published there.
    furthest: dict[int, int] = {}
    for checkpoint in loaded.values():
        for tp, offset in checkpoint.state.source_offsets.items():
            topic, partition = tp.rsplit(":", 1)
            assert topic == setup.topic_events
            furthest[int(partition)] = max(furthest.get(int(partition), 0), offset)
    assert furthest == {p: end for p, end in ends.items() if end > 0}


def test_restarted_worker_resumes_from_its_changelog(kafka_bootstrap, tmp_path, sample_events):
    split = sample_events[len(sample_events) // 2].date
    head = [e for e in sample_events if e.date < split]
    tail = [e for e in sample_events if e.date >= split]
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state")

    first = setup.start_worker(tmp_path / "worker1.log")
    try:
        ends = setup.publish(head)
        setup.wait_consumed(ends, first)
    finally:
        assert first.stop() == 0, first.log_tail()
    # Without checkpoints the second worker can only know the first half
    # through the table's changelog (its committed offsets skip the old events).
    removed = setup.store().clear_all()
    assert removed, "the first worker wrote no checkpoints at shutdown"

    second = setup.start_worker(tmp_path / "worker2.log")
    try:
        more = setup.publish(tail)
        setup.wait_consumed(more, second)
        live_decisions = setup.decisions()
    finally:
        assert second.stop() == 0, second.log_tail()

    expected_states, expected_decisions = _replay(sample_events)
    loaded, refused = setup.store().load_all()
    assert not refused
    assert sorted(loaded) == sorted(expected_states)
    for stream, checkpoint in loaded.items():
        assert _comparable(checkpoint.state) == _comparable(expected_states[stream]), stream
        assert checkpoint.state.events_applied == expected_states[stream].events_applied
    assert {(d.stream, d.date) for d in live_decisions} == {(d.stream, d.date) for d in expected_decisions}


def test_a_lost_changelog_is_made_good_from_the_checkpoints_and_the_log(kafka_bootstrap, tmp_path, sample_events):
    """The tables' changelogs are gone (deleted here; lost by a broker or an
    operator in life) while the group's committed offsets stay at the end and
    only older checkpoints remain. The worker must not go on from the
    committed offsets with those checkpoints (their streams would stay behind
    for good, silently): it reads the log again from the checkpoints' offsets."""
    from aiokafka.admin import AIOKafkaAdminClient

    from sequencer.adapters.kafka.log_reader import changelog_topic
    from sequencer.adapters.faust.live_state import LAST_EVENTS_TABLE, STATES_TABLE

    events = [e for e in sample_events if e.stream in ("ES1", "ES2", "NQ1")]
    split = events[len(events) // 2].date
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=2)
    _fold_and_stop(setup, [e for e in events if e.date < split], tmp_path / "worker1.log")
    folder = setup.store().folder
    head = _checkpoint_bytes(folder)
    assert len(head) == 3, sorted(head)
    _fold_and_stop(setup, [e for e in events if e.date >= split], tmp_path / "worker2.log")

    async def delete_changelogs() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            await admin.delete_topics([changelog_topic(setup.group, table)
                                       for table in (STATES_TABLE, LAST_EVENTS_TABLE)])
        finally:
            await admin.close()

    asyncio.run(delete_changelogs())
    setup.store().clear_all()
    for name, data in head.items():
        (folder / name).write_bytes(data)

    expected, _ = _replay(events)
    with setup.start_worker(tmp_path / "worker3.log") as third:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # periodic checkpoints every 2 s
            loaded, _ = setup.store().load_all()
            if all(loaded[s].state.last_processed_date == expected[s].last_processed_date for s in loaded):
                break
            time.sleep(1)
        with urllib.request.urlopen(third.url + "/status", timeout=10) as answer:
            status = json.load(answer)
        with urllib.request.urlopen(third.url + "/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
        assert third.stop() == 0, third.log_tail()
        log = third.log_path.read_text()
    assert status["partitions_read_again_for_checkpoints"] >= 1, status  # seen without reading logs
    assert (f"sequencer_partitions_read_again_for_checkpoints_total "
            f"{float(status['partitions_read_again_for_checkpoints'])}") in metrics  # and alerted on
    loaded, refused = setup.store().load_all()
    assert not refused and sorted(loaded) == sorted(expected)
    for stream, checkpoint in loaded.items():
        assert _comparable(checkpoint.state) == _comparable(expected[stream]), stream
    assert "reading" in log and "again from offset" in log, log[-4000:]


def test_what_views_read_while_the_tables_restore_is_not_what_the_fold_goes_on_from(
        kafka_bootstrap, tmp_path, sample_events):
    """A dashboard or a metrics scrape asks for the streams while a worker starts:
    before its first assignment the tables are empty and during the recovery part
    restored, and only older checkpoints are there. What it is shown then must not
    become the state the worker folds on from (found by bench/chaos_loop.py: the
    streams stayed at their checkpoints, the days after them never folded)."""
    import threading

    events = [e for e in sample_events if e.stream in ("ES1", "ES2", "NQ1")]
    dates = sorted({e.date for e in events})
    first_cut, second_cut = dates[len(dates) // 3], dates[2 * len(dates) // 3]
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=2)
    _fold_and_stop(setup, [e for e in events if e.date < first_cut], tmp_path / "worker1.log")
    folder = setup.store().folder
    older = _checkpoint_bytes(folder)
    assert len(older) == 3, sorted(older)
    _fold_and_stop(setup, [e for e in events if first_cut <= e.date < second_cut], tmp_path / "worker2.log")
    for name, data in older.items():  # checkpoints behind the changelog, as after a crash
        (folder / name).write_bytes(data)

    asked = []
    done = threading.Event()

    def ask(url: str) -> None:
        while not done.is_set():
            for path in ("/streams/ES1", "/streams/ES2", "/streams/NQ1", "/streams", "/metrics"):
                try:
                    with urllib.request.urlopen(url + path, timeout=2) as answer:
                        answer.read()
                    asked.append(path)
                except OSError:  # not serving yet, or a 404 before the streams are known
                    pass
            time.sleep(0.005)

    with setup.start_worker(tmp_path / "worker3.log") as third:
        poller = threading.Thread(target=ask, args=(third.url,))
        poller.start()
        try:
            third.wait_ready()
            setup.wait_consumed(setup.publish([e for e in events if e.date >= second_cut]), third)
        finally:
            done.set()
            poller.join()
        assert third.stop() == 0, third.log_tail()
    assert asked, "the views were never read"
    expected, _ = _replay(events)
    loaded, refused = setup.store().load_all()
    assert not refused and sorted(loaded) == sorted(expected)
    for stream, checkpoint in loaded.items():
        assert _comparable(checkpoint.state) == _comparable(expected[stream]), stream


def test_invalid_and_out_of_order_events_go_to_dead_letters(kafka_bootstrap, tmp_path, sample_events):
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=1)
    es1 = [e for e in sample_events if e.stream == "ES1"][:3]
    worker = setup.start_worker(tmp_path / "worker.log")

    async def produce() -> int:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            sends = [
                (b"ES1", msgpack.packb(es1[1].to_dict())),             # applied
                (b"ES1", b"\xc1 not msgpack"),                           # malformed
                (b"ES1", json.dumps({**es1[0].to_dict()}).encode()),     # out of order (JSON accepted)
                (b"ZZ1", msgpack.packb({**es1[2].to_dict(), "stream": "ZZ1", "instrument": "ZZ"})),
                (b"ES1", msgpack.packb(es1[2].to_dict())),               # applied after all that
            ]
            last = None
            for key, value in sends:
                last = await (await producer.send(setup.topic_events, value, key=key))
            return last.offset + 1
        finally:
            await producer.stop()

    try:
        end = asyncio.run(produce())
        setup.wait_consumed({0: end}, worker)
        letters = asyncio.run(_read_all(kafka_bootstrap, setup.topic_dead_letters))
        assert worker.alive()
    finally:
        assert worker.stop() == 0, worker.log_tail()

    reasons = [letter["reason"] for letter in letters]
    assert len(letters) == 3, letters
    assert "malformed msgpack" in reasons[0], [(l["source_offset"], l["reason"]) for l in letters]
    assert reasons[1].startswith("out of order") and es1[0].date in reasons[1]
    assert "unknown instrument" in reasons[2]
    assert letters[0]["value"] == b"\xc1 not msgpack"
    assert [letter["source_offset"] for letter in letters] == [1, 2, 3]
    assert all(letter["source_topic"] == setup.topic_events for letter in letters)
    state = setup.store().load("ES1", "ES").state
    assert state.last_processed_date == es1[2].date
    assert state.events_applied == 2


def test_a_restart_does_not_handle_dead_letters_at_the_tail_again(kafka_bootstrap, tmp_path, sample_events):
    # A malformed record names no stream, so no state's source offsets cover it;
    # the group's committed offset does. The restarted worker must not take it
    # for a record it missed and send it to the dead letters again.
    setup = WorkerSetup(kafka_bootstrap, tmp_path / "state", partitions=1)
    es1 = [e for e in sample_events if e.stream == "ES1"][:5]

    async def produce(records: list[tuple[bytes, bytes]]) -> int:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            for key, value in records:
                last = await (await producer.send(setup.topic_events, value, key=key))
            return last.offset + 1
        finally:
            await producer.stop()

    first = setup.start_worker(tmp_path / "worker1.log")
    try:
        end = asyncio.run(produce([(b"ES1", msgpack.packb(e.to_dict())) for e in es1[:3]]
                                  + [(b"ES1", msgpack.packb(es1[0].to_dict())),  # out of order
                                     (b"ES1", b"\xc1 not msgpack")]))  # no stream to note it in
        setup.wait_consumed({0: end}, first)
    finally:
        assert first.stop() == 0, first.log_tail()

    second = setup.start_worker(tmp_path / "worker2.log")
    try:
        second.wait_ready()
        time.sleep(3 * STALL_CHECK_S)  # the stall watch looks twice before it acts
        end = asyncio.run(produce([(b"ES1", msgpack.packb(es1[3].to_dict()))]))
        setup.wait_consumed({0: end}, second)
        letters = asyncio.run(_read_all(kafka_bootstrap, setup.topic_dead_letters))
    finally:
        assert second.stop() == 0, second.log_tail()

    assert [letter["source_offset"] for letter in letters] == [3, 4], letters
    assert "seeking back" not in second.log_tail(100_000)
    assert setup.store().load("ES1", "ES").state.last_processed_date == es1[3].date


async def _read_all(bootstrap: str, topic: str) -> list[dict]:
    """Every record of ``topic`` to its end, decoded, by the product's own topic reader."""
    from sequencer.adapters.kafka.log_reader import read_topic

    found: list[dict] = []
    await read_topic(bootstrap, topic, lambda records: found.extend(msgpack.unpackb(r.value, raw=False) for r in records))
    return sorted(found, key=lambda letter: letter["source_offset"])
