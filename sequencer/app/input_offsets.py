"""Find records the stream never handed to the agent, using the states' own offsets.

Faust's consumer was seen (right after a worker start, on Tansu, about one
start in three) to fetch records and never hand them to the agent: the fetch
position moves on, the stream skips them, and the states silently miss days.
Faust drops them while its flow or generation changes (see
docs/benchmarks.md, "Delivery holes"). Our states know how far they got
(``source_offsets``), so the worker checks what it is given:

- a batch whose records jump past the next offset a partition expects has a
  hole: the records of that partition from the hole on are not folded, and
  the consumer is sought back to the hole, so Faust delivers (and acks, and
  commits) them again through its normal path;
- a partition whose fetch position is past what it expects while nothing
  arrives has lost its tail the same way (`StallWatch`): it is sought back too.

A hole that comes back at the same offset after a seek is checked with a
plain read (`sequencer.adapters.kafka.log_reader.read_range`): transaction markers and compaction leave offsets
with no record, and those are accepted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Iterable, Mapping, Protocol

from sequencer.domain import StreamState
from sequencer.app.records import SourceRecord, partitions_of

logger = logging.getLogger(__name__)


class PartitionPositions:
    """The next offset the worker expects per ``topic:partition`` (pure bookkeeping)."""

    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._learned: set[str] = set()

    def forget(self) -> None:
        """After a rebalance: what this worker expects must be learned again."""
        self._next.clear()
        self._learned.clear()

    def knows(self, tp: str) -> bool:
        return tp in self._learned

    def expected(self, tp: str) -> int | None:
        return self._next.get(tp)

    def learn(self, tp: str, offsets: Iterable[int]) -> None:
        """Seed from next offsets known elsewhere (states' source offsets, the group's commit)."""
        self._learned.add(tp)
        best = max(offsets, default=None)
        if best is not None and best > self._next.get(tp, -1):
            self._next[tp] = best

    def split_at_holes(self, records: Iterable[SourceRecord]) -> tuple[list[SourceRecord], dict[str, tuple[int, int]]]:
        """``(kept, holes)``: the records before each partition's first hole, and the holes.

        ``holes`` maps ``tp`` to ``(start, stop)``: offsets ``start <= o < stop``
        were skipped. Records of a partition from its first hole on are left
        out of ``kept``; they come again after a seek to ``start``. Offsets
        before a partition's known position are redeliveries, never holes.
        """
        kept, holes, _ = self.split_and_advance_to(records)
        return kept, holes

    def split_and_advance_to(self, records: Iterable[SourceRecord]) -> tuple[
            list[SourceRecord], dict[str, tuple[int, int]], dict[str, int]]:
        """`split_at_holes`, and the positions `advance` of the kept records would set
        (one pass over the records instead of two)."""
        kept: list[SourceRecord] = []
        holes: dict[str, tuple[int, int]] = {}
        expected = dict(self._next)
        for record in records:
            tp = record.partition_key
            if tp in holes:
                continue
            position = expected.get(tp)
            if position is not None and record.offset > position:
                holes[tp] = (position, record.offset)
                continue
            kept.append(record)
            if position is None or record.offset + 1 > position:
                expected[tp] = record.offset + 1
        return kept, holes, expected

    def accept_gap(self, tp: str, stop: int) -> None:
        """Offsets before ``stop`` hold no record (markers, compaction): move on."""
        if stop > self._next.get(tp, -1):
            self._next[tp] = stop

    def rewind(self, tp: str, offset: int) -> None:
        """Expect ``offset`` next again (a batch from there is to be folded again)."""
        self._next[tp] = offset

    def advance_to(self, positions: Mapping[str, int]) -> None:
        """Expect ``positions`` next where they are further than what is expected now."""
        for tp, offset in positions.items():
            if offset > self._next.get(tp, -1):
                self._next[tp] = offset

    def advance(self, records: Iterable[SourceRecord]) -> None:
        for record in records:
            tp = record.partition_key
            if record.offset + 1 > self._next.get(tp, -1):
                self._next[tp] = record.offset + 1


class StallWatch:
    """Partitions whose fetch position stays past the expected offset with nothing arriving.

    `observe` is called every few seconds with, per partition, the offset the
    worker expects next, the consumer's fetch position and a counter of
    batches handled; a partition is stalled once the same picture was seen
    twice in a row (records merely waiting in the stream's buffer move the
    batch counter on).
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, int, int]] = {}

    def observe(self, tp: str, expected: int | None, position: int | None, batches: int) -> bool:
        if expected is None or position is None or position <= expected:
            self._seen.pop(tp, None)
            return False
        picture = (expected, position, batches)
        stalled = self._seen.get(tp) == picture
        self._seen[tp] = picture
        if stalled:
            del self._seen[tp]
        return stalled

    def forget(self) -> None:
        self._seen.clear()


class ConsumerPort(Protocol):
    """What `InputOffsets` needs of the consumer, partitions named ``topic:partition``."""

    def assigned(self) -> list[str]: ...

    def highwater(self, tp: str) -> int | None:
        """The partition's end as the last fetch response reported it; None before any fetch."""

    async def position(self, tp: str) -> int: ...

    async def seek(self, tp: str, offset: int) -> None: ...

    async def commit(self, offsets: Mapping[str, int]) -> bool: ...

    async def group_offsets(self) -> dict[str, int]:
        """The group's committed offsets on the events topic."""

    async def read_range(self, tp: str, start: int, stop: int) -> list[SourceRecord]:
        """The records ``start <= offset < stop``, read without the group."""

    async def log_start(self, tp: str) -> int:
        """The partition's first offset: past 0 once the broker deleted records."""


class InputOffsets:
    """The worker's side of the events topic's offsets: holes, stalls and commits.

    ``held_states`` gives the states this worker holds (their source offsets
    say how far each partition was folded).
    """

    def __init__(self, consumer: ConsumerPort, held_states: Callable[[], Iterable[StreamState]],
                 checkpoint_only: Callable[[], Iterable[StreamState]] = tuple) -> None:
        self.consumer = consumer
        self.held_states = held_states
        #: States seeded from a checkpoint file that the table does not hold
        #: (`LiveStates.checkpoint_only`): how far their tail must be read again.
        self.checkpoint_only = checkpoint_only
        self.positions = PartitionPositions()
        self.stalls = StallWatch()
        self.rewound: dict[str, int] = {}  # tp -> hole start last sought back to
        self.committed: dict[str, int] = {}  # tp -> offset this worker committed last
        self.rewinds = 0
        self.checkpoint_tails_read = 0  # partitions read again for a checkpoint-only state
        #: Records the broker deleted (retention) before this worker folded them:
        #: the streams of their partitions miss those days.
        self.records_deleted_unfolded = 0
        self._in_flight: asyncio.Future[None] | None = None  # the last commit started
        self._generation = 0  # moves on at each forget (a rebalance)

    def forget(self) -> None:
        """After a rebalance: partitions may have moved, learn them again."""
        self.positions.forget()
        self.stalls.forget()
        self.rewound.clear()
        self.committed.clear()
        self._generation += 1

    async def learn(self, tps: Iterable[str]) -> None:
        """What each newly seen partition expects next: the furthest of its states'
        source offsets and the group's committed offset. Records past the states
        but committed were dead letters or duplicates, handled already: without
        the committed offset they would look like a hole and be sent again.
        Only this worker commits the events topic, and only what it handled, so
        a committed offset never skips a record it missed.
        An offset past the partition's end belongs to a log that was replaced
        (topic recreated, a fresh in-memory broker) and is left out; a
        partition is learned once a fetch has told its end.

        A state that only a checkpoint holds is the exception: every stream
        folded is written to the table, so a stream missing there while its
        checkpoint lies behind what the partition expects lost its table value
        (a changelog deleted or lost). The records after its checkpoint were
        folded once, into the lost value; the partition is read again from the
        checkpoint's offset, so they are folded again onto the checkpoint
        instead of being skipped for good (the other streams' states skip them
        as redeliveries)."""
        ends = {tp: self.consumer.highwater(tp) for tp in tps if not self.positions.knows(tp)}
        ends = {tp: end for tp, end in ends.items() if end is not None}
        if not ends:
            return
        try:
            group = await self.consumer.group_offsets()
        except Exception as exc:  # noqa: BLE001 - the states alone still find holes
            logger.warning("committed offsets not available: %r", exc)
            group = {}
        held = list(self.held_states())
        # Once for all the partitions: deciding a seed's source decodes its table value.
        checkpoint_only = list(self.checkpoint_only())
        for tp, end in ends.items():
            offsets = [s.source_offsets[tp] for s in held if tp in s.source_offsets]
            if tp in group:
                offsets.append(group[tp])
            stale = [offset for offset in offsets if offset > end]
            if stale:
                logger.warning("%s ends at %d but states or the group point up to %d: offsets of a "
                               "replaced log, ignored", tp, end, max(stale))
            self.positions.learn(tp, [offset for offset in offsets if offset <= end])
            if self.positions.expected(tp) is None:
                # Nothing of it folded yet, so it is read from its start: a start
                # past 0 means the history the states are built from is short.
                await self._report_deleted(tp, 0, end)
            self._read_checkpoint_tails_again(tp, end, checkpoint_only)

    def _read_checkpoint_tails_again(self, tp: str, end: int, checkpoint_only: list[StreamState]) -> None:
        expected = self.positions.expected(tp)
        if expected is None:
            return  # nothing folded from this partition is known: it is read from the group's start
        behind = sorted((s.source_offsets[tp], s.stream) for s in checkpoint_only
                        if s.source_offsets.get(tp, end + 1) < expected)
        if not behind:
            return
        start = behind[0][0]
        logger.warning("%s: %s served from checkpoints (the table has no value, or a refused or older one) "
                       "behind offset %d that the partition was folded to (the table lost them): reading "
                       "%s again from offset %d",
                       tp, ", ".join(f"{stream} (checkpoint at offset {offset})" for offset, stream in behind),
                       expected, tp, start)
        self.checkpoint_tails_read += 1
        self.positions.rewind(tp, start)

    async def without_holes(self, records: list[SourceRecord]) -> list[SourceRecord]:
        """The records to fold now: each partition's up to its first hole. The
        consumer is sought back to a hole; a hole met again at the same offset
        is read directly and its records folded as read (none: the offsets
        hold no records, and are passed over)."""
        await self.learn(partitions_of(records))
        kept, holes, advanced = self.positions.split_and_advance_to(records)
        read_again = False
        for tp, (start, stop) in holes.items():
            if self.rewound.get(tp) == start:
                # The same hole after a seek. Read it directly: the records
                # there are folded as the log holds them (sought back to once
                # already, seeking again was seen to repeat for minutes while
                # the stream kept handing over what lay past the hole), and
                # offsets without records (transaction markers, compaction)
                # are passed over. The stream may deliver them later: they are
                # then below the expected offset, and the states skip them.
                found = [r for r in await self.consumer.read_range(tp, start, stop) if start <= r.offset < stop]
                await self._report_deleted(tp, start, stop)
                if found:
                    logger.warning("records %d to %d of %s were still not handed to the agent after a seek "
                                   "back; folding the %d records read from the log", start, stop - 1, tp, len(found))
                else:
                    logger.info("offsets %d to %d of %s hold no records; moving on", start, stop - 1, tp)
                self.positions.accept_gap(tp, stop)
                self.rewound.pop(tp, None)
                # This partition's records: those before the hole (in kept
                # already), the hole's as read, then the batch's from the hole's
                # end on, split again at any later hole.
                before = [r for r in kept if r.partition_key == tp]
                kept = [r for r in kept if r.partition_key != tp]
                kept_again, _ = self.positions.split_at_holes(
                    r for r in records if r.partition_key == tp and r.offset >= stop)
                kept.extend(before + sorted(found, key=lambda r: r.offset) + kept_again)
                read_again = True
                continue
            await self._seek_back(tp, start, "never handed to the agent")
        if read_again:
            self.positions.advance(kept)
        else:
            self.positions.advance_to(advanced)
        return kept

    async def _report_deleted(self, tp: str, start: int, stop: int) -> None:
        """A hole below the partition's log start is not offsets without records but
        records the broker deleted (a retention shorter than the worker's absence):
        they cannot be folded any more, and the states go on without those days, so
        it is said loudly, in the log, ``GET /status`` and the metrics."""
        try:
            first = await self.consumer.log_start(tp)
        except Exception as exc:  # noqa: BLE001 - unknown: the hole is taken as before
            logger.warning("log start of %s not available: %r", tp, exc)
            return
        if first <= start:
            return
        last = min(first, stop) - 1
        self.records_deleted_unfolded += last - start + 1
        logger.error("records %d to %d of %s were deleted by the broker (retention or DeleteRecords) before "
                     "this worker folded them: the streams of that partition go on without those days. "
                     "Their states need their whole history again (sequencer replay of the files, or rebuild "
                     "--from checkpoint from checkpoints taken before); keep the events topic's retention.ms "
                     "at -1", start, last, tp)

    def folded_up_to(self, tps: Iterable[str]) -> dict[str, int]:
        """Per partition of ``tps``, the offset up to which the records taken so far are
        handled: what a batch taken last covers, for `commit_folded` once it is on the
        broker (the positions move on as the next batch is taken, before this one lands)."""
        found = {}
        for tp in tps:
            expected = self.positions.expected(tp)
            if expected is not None:
                found[tp] = expected
        return found

    async def commit_folded(self, covered: Mapping[str, int]) -> None:
        """Commit ``covered`` (``{tp: offset}`` from `folded_up_to`): per partition, the
        offset up to which everything is folded and on the broker.

        Returns once the commit is started, not done: the next batch need not
        wait for the group coordinator's answer (about 16 ms a batch on the
        embedded broker, a tenth of a backlog's time). The states'
        ``source_offsets``, not the group's offsets, say what is folded: a
        commit that lands late or not at all (a crash) only means records come
        again, and those are skipped as redeliveries. One commit is in flight
        at a time, the next after it; `settled` waits for the last."""
        offsets = {tp: offset for tp, offset in covered.items() if offset > self.committed.get(tp, -1)}
        if not offsets:
            return
        self._in_flight = asyncio.ensure_future(self._commit_after(self._in_flight, offsets, self._generation))

    async def _commit_after(self, previous: "asyncio.Future[None] | None", offsets: dict[str, int],
                            generation: int) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            done = await self.consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - the next batch commits again
            logger.warning("commit of %s failed: %r", offsets, exc)
            return
        # A commit that finishes after a rebalance says nothing of the new assignment.
        if done and generation == self._generation:
            self.committed.update(offsets)

    async def settled(self) -> None:
        """Wait for the commit in flight, if any (a revocation, a stop: the next owner starts
        from it)."""
        if self._in_flight is not None:
            await asyncio.wait([self._in_flight])

    async def rewind(self, records: Iterable[SourceRecord]) -> None:
        """Deliver ``records`` again: per partition, expect and seek back to their first offset
        (a batch whose commit failed; nothing of it was committed)."""
        first: dict[str, int] = {}
        for record in records:
            tp = record.partition_key
            if record.offset < first.get(tp, record.offset + 1):
                first[tp] = record.offset
        for tp, offset in first.items():  # all before the first seek: a batch taken meanwhile sees them
            self.positions.rewind(tp, offset)
        for tp, offset in first.items():
            try:
                await self._seek_back(tp, offset, "folded but not committed")
            except Exception as exc:  # noqa: BLE001 - revoked meanwhile: the next owner reads them
                logger.warning("seek of %s back to %d failed: %r", tp, offset, exc)

    async def check_stalls(self, batches: int, idle: Callable[[], bool]) -> None:
        """Seek back partitions whose fetch position ran past what was folded
        while nothing arrived (``batches``: the count of batches handled so far)."""
        assigned = self.consumer.assigned()
        await self.learn(assigned)
        for tp in assigned:
            expected = self.positions.expected(tp)
            try:
                position = await self.consumer.position(tp)
            except Exception as exc:  # noqa: BLE001 - revoked meanwhile
                logger.debug("no position for %s: %r", tp, exc)
                continue
            if self.stalls.observe(tp, expected, position, batches) and idle():
                await self._seek_back(tp, expected, f"fetched (position {position}) but never handed to the agent")

    async def _seek_back(self, tp: str, offset: int, why: str) -> None:
        logger.warning("records of %s from offset %d were %s; seeking back to them", tp, offset, why)
        self.rewinds += 1
        self.rewound[tp] = offset
        await self.consumer.seek(tp, offset)

