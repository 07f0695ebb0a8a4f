"""Units of ownership and honest signals: the older-checkpoint refusal, the
checkpoint schedule's age, the worker's status, and the runtime's owned view."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from sequencer.adapters.files.checkpoints import CheckpointStore, OlderCheckpoint, is_older
from sequencer.adapters.faust.live_state import CheckpointSchedule, LiveStates, changelog_partition
from sequencer.app.codecs import encode_state
from sequencer.adapters.faust.worker import WorkerRuntime
from sequencer.app.worker_status import WAIT_LOG_S, WorkerStatus

from tests.unit.test_state_and_checkpoints import CONFIG, some_state, store_at


def test_a_checkpoint_is_never_replaced_by_an_older_state(tmp_path: Path, caplog):
    store = store_at(tmp_path)
    newer = some_state(days=9)
    path = store.save(newer)
    before = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="sequencer.adapters.files.checkpoints"):
        with pytest.raises(OlderCheckpoint) as refused:
            store.save(some_state(days=3))
    assert path.read_bytes() == before
    assert "2025-01-09" in str(refused.value) and "2025-01-03" in str(refused.value)
    assert any("refused" in r.getMessage() for r in caplog.records)
    store.save(newer)  # the same state again is not older
    store.save(some_state(days=12))  # a newer one replaces it
    assert store.load("ES1", "ES").state.events_applied == 12


def test_older_means_an_earlier_date_or_fewer_events():
    three, nine = some_state(days=3), some_state(days=9)
    assert is_older(three, nine) and not is_older(nine, three) and not is_older(nine, nine)
    fewer = nine._replace(events_applied=nine.events_applied - 1)
    assert is_older(fewer, nine)


def test_a_removed_checkpoint_can_start_over(tmp_path: Path):
    store = store_at(tmp_path)
    store.save(some_state(days=9))
    store.clear("ES1")
    store.save(some_state(days=3))
    assert store.load("ES1", "ES").state.events_applied == 3


def test_failed_checkpoint_writes_leave_the_age_growing(tmp_path: Path):
    # The folder is fine at start (a store refuses a bad one up front), then a
    # file takes its place: every write fails from then on.
    blocked = tmp_path / "blocked"
    schedule = CheckpointSchedule(CheckpointStore(blocked, CONFIG), every_events=1, every_seconds=0)
    blocked.write_text("a file where the state folder should be")
    state = some_state(days=3)
    schedule.note(["ES1"], 1)
    assert schedule.write({"ES1": state}) == 0
    assert schedule.last_written_at is None and schedule.failures == 1
    assert schedule.due()  # still dirty: the next round tries again

    schedule.store = CheckpointStore(tmp_path / "state", CONFIG)
    assert schedule.write({"ES1": state}) == 1
    assert schedule.last_written_at is not None and not schedule.due()


def test_an_older_state_is_refused_not_failed(tmp_path: Path):
    store = CheckpointStore(tmp_path, CONFIG)
    store.save(some_state(days=9))
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=60)
    assert schedule.write({"ES1": some_state(days=3)}, force=True) == 0
    assert schedule.refused_older == 1 and schedule.failures == 0
    assert schedule.last_written_at is not None
    assert store.load("ES1", "ES").state.events_applied == 9


def test_status_says_why_nothing_is_folded(caplog):
    now = [100.0]
    status = WorkerStatus(clock=lambda: now[0])
    status.observe(recovering=False, assigned=False, session_timeout_s=6)
    assert status.phase == "waiting" and "session timeout (6 s)" in status.reason
    with caplog.at_level(logging.INFO, logger="sequencer.app.worker_status"):
        now[0] += WAIT_LOG_S + 1
        status.observe(recovering=False, assigned=False, session_timeout_s=6)
    assert any("folded nothing for 11 s" in r.getMessage() for r in caplog.records)
    status.observe(recovering=True, assigned=True, session_timeout_s=6)
    assert status.phase == "recovering"
    status.observe(recovering=False, assigned=True, session_timeout_s=6)
    assert status.phase == "idle"
    status.folded()
    assert status.as_dict()["phase"] == "folding" and status.as_dict()["since_last_fold_s"] == 0
    status.set("retrying", "batch commit step 2 failed")
    status.observe(recovering=False, assigned=True, session_timeout_s=6)
    assert status.phase == "retrying"  # only a folded batch ends it
    status.folded()
    assert status.phase == "folding"


def _runtime(states: dict) -> WorkerRuntime:
    table = {stream.encode(): encode_state(state) for stream, state in states.items()}
    states_table = SimpleNamespace(data=table, keys=table.keys, name="states")
    live = LiveStates(CONFIG, read_table=lambda stream: table.get(stream.encode()))
    settings = SimpleNamespace(topic_events="events", partitions=4)
    return WorkerRuntime(settings, CONFIG, None, live, None, None, states_table=states_table,
                         last_events_table=None)


def test_the_runtime_serves_and_checkpoints_only_owned_partitions():
    es1 = some_state("ES1").with_source_offsets({"events:1": 15})
    nq1 = some_state("NQ1").with_source_offsets({"events:2": 15})
    runtime = _runtime({"ES1": es1, "NQ1": nq1})
    assert runtime.states() == {}  # nothing assigned yet
    runtime.own([1, 2])
    assert set(runtime.states()) == {"ES1", "NQ1"}
    runtime.disown([2])
    assert set(runtime.states()) == {"ES1"} and runtime.state("NQ1") is None
    runtime.states()  # both in the cache now
    # A revocation: out of the cache, the table keeps it (Faust does not restore a kept partition).
    assert runtime.drop_partitions({2}) == ["NQ1"]
    assert b"NQ1" in runtime.states_table.data and "NQ1" not in runtime.live.cached()
    runtime.own([1])  # the assignment without partition 2: out of the table's memory too
    assert runtime.drop_partitions({0, 2, 3}, from_tables=True) == ["NQ1"]
    assert b"NQ1" not in runtime.states_table.data and "NQ1" not in runtime.live.cached()
    assert runtime.state("ES1") == es1
    assert changelog_partition(nq1, "NQ1", "events", 4) == 2


def test_an_assignment_decides_every_stream_again_from_the_restored_tables():
    # Before: the worker did not own partition 2, and a view read NQ1 from its
    # checkpoint (the table had no value). Then partition 2 is assigned and its
    # changelog restored, newer than that checkpoint: the table must win.
    older = some_state("NQ1", days=3).with_source_offsets({"events:2": 3})
    newer = some_state("NQ1", days=9).with_source_offsets({"events:2": 9})
    table: dict[bytes, bytes] = {}
    states_table = SimpleNamespace(data=table, keys=table.keys, name="states")
    live = LiveStates(CONFIG, read_table=lambda stream: table.get(stream.encode()), seeds={"NQ1": older})
    runtime = WorkerRuntime(SimpleNamespace(topic_events="events", partitions=4), CONFIG, None, live, None, None,
                            states_table=states_table, last_events_table=None)
    runtime.assigned([1])
    assert runtime.state("NQ1") is None and live.cached() == {"NQ1": older}  # not ours; read, cached
    table[b"NQ1"] = encode_state(newer)  # partition 2's changelog restored
    runtime.assigned([1, 2])
    assert runtime.state("NQ1").events_applied == newer.events_applied
