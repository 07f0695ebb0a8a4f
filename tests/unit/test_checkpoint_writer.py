"""Checkpoint rounds off the batch path (`live_state.CheckpointWriter`).

The batch path only notes what changed and starts a round; the files are
written in an executor while batches go on. What a user relies on: a batch
never waits for the files; a round writes the states as they were when it
started and the streams changed meanwhile are written by the next round;
two rounds never write at once (so a file never goes back to an older
state); a stream whose partition is revoked during a round is not written;
a stop's round comes after the one in flight; ``POST /streams/{s}/checkpoint``
(`views.checkpoint_now`) is a round of one stream under the same lock, with
its answers (200, 409, 503, 404) unchanged. Real files in tmp_path; the
store's save is wrapped to hold a round open or count overlaps.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace

from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.adapters.faust.live_state import CheckpointSchedule, CheckpointWriter
from sequencer.adapters.http.views import checkpoint_now

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


# -- POST /streams/{s}/checkpoint: one stream's round under the same lock ----------------------

def view_runtime(writer: CheckpointWriter, store: CheckpointStore, owned_states) -> SimpleNamespace:
    """What `views.checkpoint_now` reads of a running worker (`WorkerView`); ``owned_states()``
    gives the states of the streams it owns now, as `WorkerRuntime.states` does."""
    return SimpleNamespace(checkpoints=writer, store=store,
                           state=lambda stream: owned_states().get(stream))


def es1_writer(tmp_path: Path, days: int):
    """A gated store and a writer over one stream, ES1, folded ``days`` days, always owned."""
    store = GatedStore(tmp_path)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=3600)
    states = {"ES1": some_state("ES1", days=days)}
    current = lambda: dict(states)  # noqa: E731
    return store, schedule, states, current, CheckpointWriter(schedule, current, lambda state: True)


async def test_a_post_during_a_round_waits_and_the_rounds_older_state_never_wins(tmp_path):
    store, schedule, states, current, writer = es1_writer(tmp_path, days=3)

    schedule.note(["ES1"], 1)
    assert writer.start_if_due()
    await wait_thread(store.entered)  # the round holds ES1 at 3 days, inside its save
    states["ES1"] = some_state("ES1", days=5)  # a batch folds on meanwhile
    post = asyncio.ensure_future(checkpoint_now(view_runtime(writer, store, current), "ES1"))
    await asyncio.sleep(0.1)
    assert not post.done()  # it waits for the round in flight...
    assert store.most_at_once == 1  # ...instead of saving the same file beside it
    store.gate.set()
    status, body = await post
    assert status == 200, body
    assert body["events_applied"] == 5 and body["path"] == str(store.path_for("ES1", "ES"))
    assert store.saved == [("ES1", 3), ("ES1", 5)]
    assert on_disk(store, "ES1") == 5


async def test_a_round_due_during_a_post_writes_after_it(tmp_path):
    store, schedule, states, current, writer = es1_writer(tmp_path, days=5)

    post = asyncio.ensure_future(checkpoint_now(view_runtime(writer, store, current), "ES1"))
    await wait_thread(store.entered)  # the POST holds ES1 at 5 days, inside its save
    states["ES1"] = some_state("ES1", days=8)
    schedule.note(["ES1"], 3)
    assert writer.start_if_due()
    await asyncio.sleep(0.1)
    assert store.most_at_once == 1  # the round waits for the POST's save
    store.gate.set()
    status, body = await post
    await writer.idle()
    assert status == 200 and body["events_applied"] == 5
    assert store.saved == [("ES1", 5), ("ES1", 8)]
    assert on_disk(store, "ES1") == 8


async def test_a_post_answers_409_503_and_404_as_before(tmp_path):
    store = CheckpointStore(tmp_path / "state", CONFIG, clock=lambda: SAVED_AT)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=3600)
    owned = {"ES1", "NQ1"}
    states = {"ES1": some_state("ES1", days=3), "NQ1": some_state("NQ1", days=3)}
    current = lambda: {s: v for s, v in states.items() if s in owned}  # noqa: E731
    writer = CheckpointWriter(schedule, current, lambda state: state.stream in owned)
    runtime = view_runtime(writer, store, current)

    store.save(some_state("ES1", days=6))  # the file on disk is newer than the worker's state
    status, body = await checkpoint_now(runtime, "ES1")
    assert status == 409 and "not replaced" in body["error"] and body["stream"] == "ES1"
    assert on_disk(store, "ES1") == 6

    target = store.path_for("NQ1", "NQ")
    target.mkdir()  # a folder in the file's place: the write fails with an OS error
    status, body = await checkpoint_now(runtime, "NQ1")
    assert status == 503 and "checkpoint of NQ1 not written" in body["error"]
    assert str(target) in body["error"] and body["folder"] == str(store.folder)
    target.rmdir()

    owned.discard("NQ1")  # another worker's stream now
    status, body = await checkpoint_now(runtime, "NQ1")
    assert status == 404 and body == {"error": "unknown stream 'NQ1'", "stream": "NQ1"}
    assert (await checkpoint_now(runtime, "../ES1"))[0] == 404
    assert store.load("NQ1", "NQ") is None
    assert schedule.written == 0  # a POST is not a periodic round: its counters stay


async def test_a_stream_revoked_while_its_post_waits_is_not_written(tmp_path):
    store = GatedStore(tmp_path)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=3600)
    owned = {"ES1", "NQ1"}
    states = {"ES1": some_state("ES1", days=3), "NQ1": some_state("NQ1", days=3)}
    current = lambda: {s: v for s, v in states.items() if s in owned}  # noqa: E731
    writer = CheckpointWriter(schedule, current, lambda state: state.stream in owned)

    schedule.note(["ES1"], 1)
    writer.start_if_due()
    await wait_thread(store.entered)  # a round of ES1 in flight
    post = asyncio.ensure_future(checkpoint_now(view_runtime(writer, store, current), "NQ1"))
    await asyncio.sleep(0.05)
    owned.discard("NQ1")  # revoked while the POST waits for its turn
    store.gate.set()
    status, _ = await post
    assert status == 404
    assert store.saved == [("ES1", 3)] and store.load("NQ1", "NQ") is None
