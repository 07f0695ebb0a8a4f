"""The events topic's records, from the consumer's drain straight to the worker's batches.

Faust hands every fetched record to a stream through its conductor (flow
control, the producer buffer's check, the channel's decode into an event, a
queue with pressure callbacks) and the stream's iterator (sensors, the
current event, processors); on the 120,000-event backlog that was about 15 us
of the main thread's 40 per record, more than the fold (docs/benchmarks.md,
"Records straight to the batches, batches folded one ahead"). The worker
folds batches, never single events, so with the fast drain (`private_api`,
use 3) the drain puts each record of the events topic here as a
`SourceRecord`, and the agent takes its batches from here instead of from its
stream.

Batches are handed over as `take_bursts` hands them over: when the first
record is in and then ``settle`` seconds pass without a new one, ``within``
seconds after the first, or at ``max_`` records. At most ``most`` records wait
here: the drain waits for room (as a full stream buffer holds Faust's), so the
consumer stops fetching. A revocation clears what waits (as Faust clears its
stream buffers): the records come again after the seek back that the input
offsets' hole and stall checks make (`sequencer.app.input_offsets`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sequencer.app.records import SourceRecord

#: Records that may wait to be taken (Faust's stream buffer: ``stream_buffer_maxsize``).
MOST_WAITING = 32768


_new_tuple = tuple.__new__


def record_of(message: Any) -> SourceRecord:
    """The `SourceRecord` of a Faust message (its timestamp is in seconds, a float).

    Built by ``tuple.__new__`` with every field in order, as the NamedTuple's own
    ``__new__`` builds it without the Python-level call in between (one record a
    message: a third of this function's time)."""
    seconds = message.timestamp
    return _new_tuple(SourceRecord, (message.topic, message.partition, message.offset, message.key,
                                     message.value, int(seconds * 1000) if seconds else None))


class RecordIntake:
    """Records waiting for a batch (see the module docstring). One loop, one taker."""

    def __init__(self, most: int = MOST_WAITING) -> None:
        self.most = most
        self._records: list[SourceRecord] = []
        self._arrived = asyncio.Event()  # at least one record waits
        self._room = asyncio.Event()  # fewer than `most` wait
        self._room.set()
        self.cleared = 0  # records dropped by `clear`, for the logs and tests

    def __len__(self) -> int:
        return len(self._records)

    def put(self, message: Any) -> bool:
        """Add a Faust message's record; False when the intake is full (await `room`)."""
        records = self._records
        records.append(record_of(message))
        self._arrived.set()
        if len(records) >= self.most:
            self._room.clear()
            return False
        return True

    async def room(self) -> None:
        """Wait until fewer than ``most`` records wait."""
        await self._room.wait()

    def clear(self) -> int:
        """Drop every waiting record (partitions revoked); how many were dropped."""
        dropped = len(self._records)
        self._records.clear()
        self._arrived.clear()
        self._room.set()
        self.cleared += dropped
        return dropped

    async def take(self, max_: int, within: float, settle: float) -> list[SourceRecord]:
        """The next batch: at least one record, at most ``max_`` (see the module docstring)."""
        records = self._records
        while True:
            while not records:
                self._arrived.clear()
                await self._arrived.wait()
            first_at = time.monotonic()
            seen = len(records)
            while seen < max_:
                left = first_at + within - time.monotonic()
                if left <= 0:
                    break
                await asyncio.sleep(min(settle, left))
                if len(records) == seen:
                    break
                seen = len(records)
            batch = records[:max_]
            del records[:max_]
            if not records:
                self._arrived.clear()
            if len(records) < self.most:
                self._room.set()
            if batch:  # empty only when a revocation cleared the records meanwhile
                return batch
