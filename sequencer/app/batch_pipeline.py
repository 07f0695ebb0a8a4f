"""The worker's batches, folded one ahead: the next batch is folded while the one
before it is being committed.

A batch commit (`batch_commit.BatchCommit`) mostly waits: for the broker to
acknowledge the decisions, then the changelog records. On a backlog the
worker's main thread had nothing else to do for 5-15% of the time
(docs/benchmarks.md, "Records straight to the batches, batches folded one
ahead"). `BatchPipeline.submit` lets that wait overlap with taking and
folding the next batch:

1. the records are checked against the offsets folded so far (holes,
   `input_offsets.InputOffsets.without_holes`), and what they cover is noted;
2. they are folded on top of the states of the batch being committed, if
   there is one (its states are not in the view until it lands);
3. ``submit`` waits for that commit, then starts this batch's in the
   background and returns, so the agent takes the next batch meanwhile.

What stays as it was without the overlap:

- commits run one at a time, in batch order, each through all its steps: a
  batch's decisions are sent only after the batch before it is on the broker
  (decisions, changelog, then the offsets it covers);
- each commit commits the offsets its own batch covers, noted when it was
  folded, never those of a batch folded after it;
- a failed commit voids the batch folded on top of it: the counters go back
  to before the failed batch, both batches' records are asked for again (one
  seek back per partition to the earliest), and no commit starts before the
  pause of `batch_commit.RetryDelay` has passed. Taking and folding records
  and handling a failure exclude each other (one lock), so no batch is folded
  from positions or states that a failure is undoing;
- `drain` waits for everything folded to be committed (a revocation, a stop).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Protocol

from sequencer.app.batch_commit import BatchCommit, BatchCommitFailed, CommitResult, RetryDelay
from sequencer.app.processor import BatchOutcome, EventProcessor, ProcessingCounters
from sequencer.app.records import SourceRecord, partitions_of

logger = logging.getLogger(__name__)

class InputPort(Protocol):
    """What the pipeline needs of the input offsets (`input_offsets.InputOffsets`)."""

    async def without_holes(self, records: list[SourceRecord]) -> list[SourceRecord]: ...

    def folded_up_to(self, tps: Iterable[str]) -> dict[str, int]: ...

    async def rewind(self, records: Iterable[SourceRecord]) -> None: ...


@dataclass(frozen=True, slots=True)
class FoldedBatch:
    """A batch folded and not yet committed."""

    records: list[SourceRecord]
    outcome: BatchOutcome
    covered: Mapping[str, int]  # topic:partition -> next offset, what the commit commits
    counters_before: ProcessingCounters  # the processor's counters before this fold


class BatchPipeline:
    """Fold batches one ahead of their commits (see the module docstring).

    ``on_sent(folded, sent_at)`` runs when a batch's decisions are acknowledged
    (the place to observe decision latency), ``on_landed(folded, result)`` when
    its commit is done, ``on_failed(failure, delay)`` when one failed and its
    records were asked for again (``delay``: seconds before the next commit
    starts). One caller submits, one batch after the other."""

    def __init__(self, processor: EventProcessor, commit: BatchCommit, intake: InputPort, *,
                 retry: RetryDelay | None = None,
                 on_sent: Callable[[FoldedBatch, float], None] | None = None,
                 on_landed: Callable[[FoldedBatch, CommitResult], None] | None = None,
                 on_failed: Callable[[BatchCommitFailed, float], None] | None = None) -> None:
        self.processor = processor
        self.commit = commit
        self.intake = intake
        self.retry = retry or RetryDelay()
        self.on_sent = on_sent
        self.on_landed = on_landed
        self.on_failed = on_failed
        self.failed: BatchCommitFailed | None = None  # the last failure, until a batch lands
        self._lock = asyncio.Lock()  # taking + folding records, or undoing a failed commit
        self._committing: FoldedBatch | None = None  # its commit runs: the next fold starts from it
        self._commit_task: asyncio.Future[None] | None = None
        self._ahead: FoldedBatch | None = None  # folded, waiting for the commit before it
        self._resume_at = 0.0  # loop time before which no commit starts (after a failure)
        self._submitting = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def idle(self) -> bool:
        """Nothing is being folded or committed."""
        return self._idle.is_set()

    async def drain(self) -> None:
        """Wait until everything folded is committed (or failed and asked for again)."""
        await self._idle.wait()

    async def submit(self, records: list[SourceRecord]) -> None:
        """Fold ``records`` (as the stream handed them over) and start their commit once
        the commit before it is done. Returns when it has started, not finished."""
        self._submitting += 1
        self._idle.clear()
        try:
            async with self._lock:
                records = await self.intake.without_holes(records)
                if not records:
                    return
                covered = self.intake.folded_up_to(partitions_of(records))
                folded = self._fold(records, covered)
                self._ahead = folded
            if self._commit_task is not None:
                await asyncio.wait([self._commit_task])
            if self._ahead is not folded:  # the commit before it failed: it was voided
                return
            self._ahead = None
            self._committing = folded
            self._commit_task = asyncio.ensure_future(self._commit(folded))
        finally:
            self._submitting -= 1
            self._settle()

    def _fold(self, records: list[SourceRecord], covered: Mapping[str, int]) -> FoldedBatch:
        before = copy.deepcopy(self.processor.counters)
        after = self._committing.outcome if self._committing is not None else None
        outcome = self.processor.process(records, after=after)
        return FoldedBatch(records, outcome, covered, before)

    async def _commit(self, folded: FoldedBatch) -> None:
        try:
            wait = self._resume_at - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                on_sent = self.on_sent
                result = await self.commit.commit(
                    folded.outcome, folded.covered,
                    None if on_sent is None else lambda _outcome, sent_at: on_sent(folded, sent_at))
            except BatchCommitFailed as failure:
                await self._undo(folded, failure)
                return
            self._committing = None  # its states are in the view now
            self.failed = None
            self.retry.reset()
            if self.on_landed is not None:
                self.on_landed(folded, result)
        finally:
            self._commit_task = None
            self._settle()

    async def _undo(self, folded: FoldedBatch, failure: BatchCommitFailed) -> None:
        async with self._lock:  # no records are taken or folded meanwhile
            self._committing = None
            self.processor.counters = folded.counters_before
            records = list(folded.records)
            ahead, self._ahead = self._ahead, None
            if ahead is not None:  # folded on top of the failed batch: void
                records += ahead.records
            self.failed = failure
            delay = self.retry.next()
            self._resume_at = asyncio.get_running_loop().time() + delay
            logger.error("%s; the batch of %d records is folded again in %.1f s%s", failure, len(folded.records),
                         delay, f" (with the {len(ahead.records)} records folded after it)" if ahead else "")
            await self.intake.rewind(records)
            if self.on_failed is not None:
                self.on_failed(failure, delay)

    def _settle(self) -> None:
        if not self._submitting and self._commit_task is None and self._ahead is None:
            self._idle.set()
