"""The worker's batch commit: one folded batch made durable in numbered steps.

After `EventProcessor` folded a batch, `BatchCommit.commit` runs

1. **send** every decision and dead letter, one produce batch per topic
   partition (not a future per record);
2. **flush** the producer and wait for every produce batch's acknowledgement;
3. **write states**: each changed stream's state (and last applied event) to
   the tables in memory, and send their changelog records, one produce batch
   per changelog partition (the last record of each partition in a batch of
   its own when ``last_changelog_record_alone``, see below);
4. **flush** the changelog records and wait for every acknowledgement;
5. **commit** the input offsets of the batch's partitions.

A failed step 1 to 4 raises `BatchCommitFailed` naming the step: the table
values written in step 3 are put back, the worker's view of its states is
left as it was, no offset is committed, and the caller folds the batch again
(it seeks the consumer back to the batch's first offsets). Only after step 4
do the new states enter the view (`StateView.put`): they are on the broker.

Before step 3 the commit asks ``may_write`` whether this worker may still own
its partitions (`sequencer.app.membership_watch`): after a freeze longer than
the session timeout it fails at step 3 with nothing written, as a failed
flush would.

A failed step 5 is not a failed batch: decisions and states landed, and the
states' ``source_offsets`` make a redelivery of the batch a skip. The next
batch commits again (`input_offsets.InputOffsets.commit_folded` logs the failure).

Why this order (SPEC 5, at-least-once): if a crash lands a changelog record,
the decisions of that fold were already acknowledged; if it does not, the
events come again and are folded again from the old state.

Why the last changelog record of a partition goes alone: Tansu (the embedded
broker) answers ListOffsets with "base offset of the partition's last produce
batch + 1", so after a batch of n records the end it reports is n - 1 short
(its fetch answers carry the right high watermark). Faust's table recovery
reads a changelog up to that end and would stop before the last records,
restoring stale states. Only the *last* batch of a partition decides the
answer, so a last batch of one record makes it right: records 1..n-1 go in
one batch and record n in the next, both queued at once (aiokafka keeps a
partition's batches in order), one round trip for all partitions instead of
a flush per record. Probe and figures: docs/benchmarks.md, "Changelog batches".

No Faust here: the worker passes adapters (`sequencer.adapters.faust.commit_ports`), the unit
tests pass fakes that fail each step in turn.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, NamedTuple, Protocol, Sequence

from sequencer.app.codecs import dead_letter_key, encode_decision, encode_event, encode_state
from sequencer.domain import SequencerError, StreamState
from sequencer.domain.events import DayEvent
from sequencer.app.processor import BatchOutcome
from sequencer.app.records import DeadLetter

logger = logging.getLogger(__name__)


class Step(enum.IntEnum):
    """The numbered steps of a batch commit, in the order they run."""

    SEND = 1
    FLUSH_OUTPUTS = 2
    WRITE_STATES = 3
    FLUSH_STATES = 4
    COMMIT_OFFSETS = 5

    @property
    def label(self) -> str:
        return {1: "send decisions and dead letters", 2: "flush decisions and dead letters",
                3: "write states to the table", 4: "flush the table's changelog",
                5: "commit input offsets"}[int(self)]


class OwnershipInDoubt(SequencerError):
    """The worker may have lost its partitions while the batch was in flight: no state is written."""


class BatchCommitFailed(SequencerError):
    """Step ``step`` failed; nothing of the batch was committed and the view is unchanged."""

    def __init__(self, step: Step, cause: BaseException) -> None:
        super().__init__(f"batch commit step {int(step)} ({step.label}) failed: "
                         f"{type(cause).__name__}: {cause}")
        self.step = step
        self.cause = cause


class Outgoing(NamedTuple):
    """One record to produce (a NamedTuple: one is built per decision)."""

    topic: str
    key: bytes | None
    value: bytes


class ProducerPort(Protocol):
    """What step 1 and steps 2 and 4 need of a producer."""

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        """The partition the producer's partitioner gives ``key`` (same as an unbatched send)."""

    async def send_batch(self, topic: str, partition: int,
                         records: Sequence[Outgoing]) -> list[Awaitable[Any]]:
        """Queue ``records`` for one partition; one awaitable per produce batch."""

    async def flush(self) -> None: ...


class TablePort(Protocol):
    """The tables of stream states and last applied events."""

    def previous(self, stream: str) -> Any:
        """What `restore` needs to put the stream's values back as they are now."""

    def write(self, stream: str, state: bytes, last_event: bytes | None,
              partition: int | None) -> list[tuple[int, Outgoing]]:
        """Set the values in memory; returns their changelog records, each with its partition
        (``partition`` of the changelog, the stream's source partition), for step 3 to send."""

    def restore(self, stream: str, previous: Any) -> None:
        """Put back what `previous` returned (in memory only: the batch will be written again)."""


class OffsetPort(Protocol):
    async def commit_folded(self, covered: Mapping[str, int]) -> None:
        """Commit ``{topic:partition: next offset}``, what the batch's states cover."""


class StateView(Protocol):
    """The worker's view of its states (`live_state.LiveStates`)."""

    def put(self, stream: str, state: StreamState, last_event: DayEvent | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class CommitResult:
    """What a commit did. ``sent_at``: wall-clock time when every decision was acknowledged."""

    sent_at: float
    decisions: int
    dead_letters: int
    produce_batches: int


class BatchCommit:
    """Runs the numbered steps for one folded batch (see the module docstring)."""

    def __init__(self, producer: ProducerPort, table: TablePort, offsets: OffsetPort, view: StateView, *,
                 decisions_topic: str, dead_letters_topic: str,
                 encode_dead_letter: Callable[[DeadLetter], bytes],
                 last_changelog_record_alone: bool = False,
                 may_write: Callable[[], str | None] = lambda: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.producer = producer
        #: Asked before step 3: why this worker may not own its partitions now
        #: (`membership_watch.MembershipWatch.doubt`), or None.
        self.may_write = may_write
        self.table = table
        self.offsets = offsets
        self.view = view
        self.decisions_topic = decisions_topic
        self.dead_letters_topic = dead_letters_topic
        self.encode_dead_letter = encode_dead_letter
        #: Tansu's ListOffsets needs a one-record last batch per changelog
        #: partition (settings.changelog_single_record_batches; module docstring).
        self.last_changelog_record_alone = last_changelog_record_alone
        self._clock = clock

    def outgoing(self, outcome: BatchOutcome) -> list[Outgoing]:
        topic, new = self.decisions_topic, tuple.__new__  # one Outgoing a decision: no Python-level __new__
        records = [new(Outgoing, (topic, d.stream.encode(), encode_decision(d))) for d in outcome.decisions]
        records += [Outgoing(self.dead_letters_topic, dead_letter_key(letter), self.encode_dead_letter(letter))
                    for letter in outcome.dead_letters]
        return records

    async def commit(self, outcome: BatchOutcome, covered: Mapping[str, int],
                     on_sent: Callable[[BatchOutcome, float], None] | None = None) -> CommitResult:
        """Make ``outcome`` durable and commit ``covered`` (``{topic:partition: next offset}``
        the batch's states cover).

        ``on_sent(outcome, sent_at)`` runs right after step 2, when every decision is
        acknowledged (the place to observe decision latency)."""
        step = Step.SEND
        written: dict[str, Any] = {}
        try:
            pending, batches = await self._send(self.outgoing(outcome))
            step = Step.FLUSH_OUTPUTS
            await self.producer.flush()
            for ack in pending:
                await ack  # a failed produce batch raises here, before any table write
            sent_at = self._clock()
            if on_sent is not None:
                on_sent(outcome, sent_at)
            step = Step.WRITE_STATES
            doubt = self.may_write()
            if doubt is not None:
                raise OwnershipInDoubt(doubt)
            changelog: dict[tuple[str, int], list[Outgoing]] = {}
            for stream, state in outcome.states.items():
                applied = outcome.last_events.get(stream)
                written[stream] = self.table.previous(stream)
                for partition, record in self.table.write(
                        stream, encode_state(state), None if applied is None else encode_event(applied),
                        outcome.partition_of.get(stream)):
                    changelog.setdefault((record.topic, partition), []).append(record)
            pending = await self._send_changelog(changelog)
            step = Step.FLUSH_STATES
            await self.producer.flush()
            for ack in pending:
                await ack  # a failed changelog batch raises here, before the view moves
        except Exception as error:
            for stream, previous in written.items():
                self.table.restore(stream, previous)
            raise BatchCommitFailed(step, error) from error
        for stream, state in outcome.states.items():
            self.view.put(stream, state, outcome.last_events.get(stream))
        await self.offsets.commit_folded(covered)
        return CommitResult(sent_at, len(outcome.decisions), len(outcome.dead_letters), batches)

    async def _send_changelog(self, changelog: dict[tuple[str, int], list[Outgoing]]) -> list[Awaitable[Any]]:
        """Queue the changelog records, one batch per partition; with
        ``last_changelog_record_alone`` every partition's last record follows in
        a batch of its own, queued after all the others (no flush in between)."""
        pending: list[Awaitable[Any]] = []
        tails: list[tuple[str, int, list[Outgoing]]] = []
        for (topic, partition), records in changelog.items():
            if self.last_changelog_record_alone and len(records) > 1:
                records, tail = records[:-1], records[-1:]
                tails.append((topic, partition, tail))
            pending.extend(await self.producer.send_batch(topic, partition, records))
        for topic, partition, tail in tails:
            pending.extend(await self.producer.send_batch(topic, partition, tail))
        return pending

    async def _send(self, records: list[Outgoing]) -> tuple[list[Awaitable[Any]], int]:
        by_partition: dict[tuple[str, int], list[Outgoing]] = {}
        # A key's partition, asked once per batch: the partitioner (murmur2 in
        # Python) per record cost about as much as producing the record. A
        # record without a key goes where the partitioner draws it each time.
        partition_of: dict[tuple[str, bytes], int] = {}
        for record in records:  # dicts keep the order: a stream's decisions stay in sequence
            if record.key is None:
                partition = await self.producer.partition_for(record.topic, None)
            else:
                partition = partition_of.get((record.topic, record.key))
                if partition is None:
                    partition = await self.producer.partition_for(record.topic, record.key)
                    partition_of[record.topic, record.key] = partition
            by_partition.setdefault((record.topic, partition), []).append(record)
        pending: list[Awaitable[Any]] = []
        for (topic, partition), group in by_partition.items():
            pending.extend(await self.producer.send_batch(topic, partition, group))
        return pending, len(pending)


class RetryDelay:
    """Seconds to wait before folding a failed batch again: doubling, capped, reset on success."""

    def __init__(self, first_s: float = 0.5, most_s: float = 30.0) -> None:
        self.first_s = first_s
        self.most_s = most_s
        self._next = first_s

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.most_s)
        return delay

    def reset(self) -> None:
        self._next = self.first_s
