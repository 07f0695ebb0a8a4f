"""What the worker's HTTP views read of a running worker: its contract with them.

The Faust worker (`sequencer.adapters.faust.worker.WorkerRuntime`) satisfies `WorkerView`
structurally; the views (`sequencer.adapters.http.views`) are typed against it, so neither
module imports the other (the worker registers the views). Members are only those the
views use; ``tests/unit/test_layers.py`` checks that the runtime still offers each of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, MutableMapping, NamedTuple, Protocol

from sequencer.app.latency import DecisionLatency
from sequencer.app.processor import EventProcessor
from sequencer.app.worker_status import WorkerStatus
from sequencer.domain import StreamState

if TYPE_CHECKING:
    from sequencer.settings import Settings


class ChangelogTable(Protocol):
    """A changelog-backed table as the reset view uses it (a Faust ``Table``)."""

    name: str
    data: MutableMapping[Any, Any]

    def send_changelog(self, partition: int, key: Any, value: Any) -> Awaitable[Any]: ...


class CheckpointFiles(Protocol):
    """The checkpoint store as the views use it (`sequencer.adapters.files.checkpoints.CheckpointStore`)."""

    folder: Path

    def clear(self, stream: str) -> list[Path]: ...

    def path_for(self, stream: str, instrument: str) -> Path: ...


class StateCache(Protocol):
    """The worker's decoded state cache (`sequencer.adapters.faust.live_state.LiveStates`)."""

    def forget(self, stream: str | None = None) -> None: ...


class CheckpointRounds(Protocol):
    """The periodic checkpoint schedule's record (`sequencer.adapters.faust.live_state.CheckpointSchedule`)."""

    failures: int
    refused_older: int
    last_written_at: float | None


class SavedCheckpoint(NamedTuple):
    """A checkpoint written on request: the state saved and its file."""

    state: StreamState
    path: Path


class CheckpointSaver(Protocol):
    """The checkpoint rounds as ``POST .../checkpoint`` uses them
    (`sequencer.adapters.faust.live_state.CheckpointWriter`): one stream's file now,
    under the same lock and rules as the periodic rounds."""

    async def save_now(self, stream: str) -> SavedCheckpoint | None: ...


class WorkerView(Protocol):
    """A running worker, as ``GET /lag``, ``/streams``, ``/metrics``, ``/status`` and the POSTs see it."""

    settings: Settings
    store: CheckpointFiles
    live: StateCache
    processor: EventProcessor
    schedule: CheckpointRounds
    checkpoints: CheckpointSaver
    latency: DecisionLatency
    status: WorkerStatus
    states_table: ChangelogTable | None
    last_events_table: ChangelogTable | None
    batches: int  # batches handed to the agent: the group monitor's sign of activity
    owned: set[int]  # partitions of the events topic assigned now
    input_offsets: Any  # input_offsets.InputOffsets: its repairs are counted in /status
    membership: Any  # membership_watch.MembershipWatch: freezes past the session timeout

    def processing_rate(self, horizon_s: float = 30.0) -> float: ...

    def states(self) -> dict[str, StreamState]: ...

    def state(self, stream: str) -> StreamState | None: ...
