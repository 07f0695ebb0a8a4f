"""Checkpoint rounds off the batch path (`live_state.CheckpointWriter`).

The batch path only notes what changed and starts a round; the files are
written in an executor while batches go on. What a user relies on: a batch
never waits for the files; a round writes the states as they were when it
started and the streams changed meanwhile are written by the next round;
two rounds never write at once (so a file never goes back to an older
state); a stream whose partition is revoked during a round is not written;
a stop's round comes after the one in flight. Real files in tmp_path; the
store's save is wrapped to hold a round open or count overlaps.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.adapters.faust.live_state import CheckpointSchedule, CheckpointWriter

from tests.unit.test_state_and_checkpoints import CONFIG, SAVED_AT, some_state


class GatedStore(CheckpointStore):
    """A real store whose saves wait for ``gate`` and record how many ran at once."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, CONFIG, clock=lambda: SAVED_AT)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0
        self.saved: list[tuple[str, int]] = []

    def save(self, state):
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        self.entered.set()
        try:
            assert self.gate.wait(10), "the test never opened the gate"
            path = super().save(state)
            self.saved.append((state.stream, state.events_applied))
            return path
        finally:
            with self._lock:
                self.running -= 1


def on_disk(store: CheckpointStore, stream: str) -> int:
    return store.load(stream, stream[:2]).state.events_applied


async def wait_thread(event: threading.Event) -> None:
    assert await asyncio.get_running_loop().run_in_executor(None, event.wait, 10)


async def test_a_batch_does_not_wait_for_the_files_and_later_changes_go_in_the_next_round(tmp_path):
    store = GatedStore(tmp_path)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=3600)
    states = {"ES1": some_state("ES1", days=3), "NQ1": some_state("NQ1", days=3)}
    writer = CheckpointWriter(schedule, lambda: dict(states), lambda state: True)

    schedule.note(["ES1", "NQ1"], 2)
    assert writer.start_if_due()  # returns at once: the round runs as a task
    await wait_thread(store.entered)  # the round is inside its first save, held there

    # Batches go on meanwhile: a newer ES1 is noted; no second round starts.
    states["ES1"] = some_state("ES1", days=5)
    schedule.note(["ES1"], 1)
    assert not writer.start_if_due()
    assert schedule.due()  # ES1 changed after the round took its states

    store.gate.set()
    await writer.idle()
    # The round wrote what it took when it started, not the newer ES1.
    assert sorted(store.saved) == [("ES1", 3), ("NQ1", 3)]
    assert on_disk(store, "ES1") == 3 and on_disk(store, "NQ1") == 3

    assert writer.start_if_due()
    await writer.idle()
    assert store.saved[-1] == ("ES1", 5) and len(store.saved) == 3  # NQ1 unchanged: not rewritten
    assert on_disk(store, "ES1") == 5
    assert not schedule.due() and schedule.written == 3 and schedule.last_written_at is not None


async def test_rounds_never_overlap_and_a_stop_writes_after_the_round_in_flight(tmp_path):
    store = GatedStore(tmp_path)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=3600)
    states = {"ES1": some_state("ES1", days=3)}
    writer = CheckpointWriter(schedule, lambda: dict(states), lambda state: True)

    schedule.note(["ES1"], 1)
    writer.start_if_due()
    await wait_thread(store.entered)
    states["ES1"] = some_state("ES1", days=8)  # folded while the round writes
    stop = asyncio.ensure_future(writer.write(force=True))  # the clean stop's round
    await asyncio.sleep(0.05)
    assert not stop.done()  # waits for the round in flight
    store.gate.set()
    assert await stop == 1
    assert store.most_at_once == 1
    assert store.saved == [("ES1", 3), ("ES1", 8)]  # in the order the rounds took them
    assert on_disk(store, "ES1") == 8  # never replaced by the older round's state


async def test_a_stream_revoked_during_a_round_is_not_written(tmp_path):
    store = GatedStore(tmp_path)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=3600)
    owned = {"ES1", "NQ1"}
    states = {"ES1": some_state("ES1", days=3), "NQ1": some_state("NQ1", days=3)}
    writer = CheckpointWriter(schedule, lambda: {s: v for s, v in states.items() if s in owned},
                              lambda state: state.stream in owned)

    schedule.note(["ES1", "NQ1"], 2)
    writer.start_if_due()
    await wait_thread(store.entered)  # ES1 (first in stream order) is being saved
    owned.discard("NQ1")  # its partition is revoked while the round runs
    store.gate.set()
    await writer.idle()
    assert store.saved == [("ES1", 3)]
    assert store.load("NQ1", "NQ") is None
    # Not owned any more: not changed for a later round either.
    assert not schedule.due()


async def test_a_failed_file_is_retried_by_the_next_round(tmp_path):
    blocked = tmp_path / "blocked"
    store = CheckpointStore(blocked, CONFIG, clock=lambda: SAVED_AT)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=0)
    states = {"ES1": some_state("ES1", days=3)}
    writer = CheckpointWriter(schedule, lambda: dict(states), lambda state: True)
    blocked.write_text("a file where the state folder should be")

    schedule.note(["ES1"], 1)
    assert await writer.write() == 0
    assert schedule.failures == 1 and schedule.last_written_at is None and schedule.due()

    blocked.unlink()
    assert await writer.write() == 1
    assert on_disk(store, "ES1") == 3 and schedule.last_written_at is not None


async def test_a_round_that_raises_is_logged_and_the_next_one_starts(tmp_path, caplog):
    store = CheckpointStore(tmp_path, CONFIG, clock=lambda: SAVED_AT)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=3600)
    calls = []

    def states():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("table read failed")
        return {"ES1": some_state("ES1", days=3)}

    writer = CheckpointWriter(schedule, states, lambda state: True)
    schedule.note(["ES1"], 1)
    assert writer.start_if_due()
    await writer.idle()
    assert any("checkpoint round failed" in r.getMessage() for r in caplog.records)
    assert schedule.due()  # nothing was taken: ES1 is still changed
    assert writer.start_if_due()
    await writer.idle()
    assert on_disk(store, "ES1") == 3
