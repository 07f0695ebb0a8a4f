"""Faust adapters of the batch commit's ports (`sequencer.batch_commit`)."""

from __future__ import annotations

from typing import Any, Awaitable, Sequence

import faust

from .batch_commit import Outgoing


class FaustProducerPort:
    """`ProducerPort` over the aiokafka producer under Faust's transport producer.

    One aiokafka ``BatchBuilder`` per topic partition: one future per produce
    batch instead of one per record (Faust's ``send`` also fires a signal and
    builds a future for every record)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._known_topics: set[str] = set()

    def _aiokafka(self) -> Any:
        return self.app.producer._ensure_producer()

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        if topic not in self._known_topics:
            await self._aiokafka().partitions_for(topic)  # loads the metadata the partitioner needs
            self._known_topics.add(topic)
        # The same partitioner as an unbatched send with partition=None.
        return self.app.producer.key_partition(topic, key).partition

    async def send_batch(self, topic: str, partition: int, records: Sequence[Outgoing]) -> list[Awaitable[Any]]:
        producer = self._aiokafka()
        pending = []
        batch = producer.create_batch()
        for record in records:
            if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                if batch.append(key=record.key, value=record.value, timestamp=None) is None:
                    raise ValueError(f"a record of {len(record.value)} bytes does not fit a produce "
                                     f"batch of {topic}")
        if batch.record_count():
            pending.append(await producer.send_batch(batch, topic, partition=partition))
        return pending

    async def flush(self) -> None:
        await self.app.producer.flush()


class FaustTablePort:
    """`TablePort` over the worker's two raw-bytes tables.

    A Faust table sends a changelog record to the partition of the *current
    event*; inside ``take_events`` there is none, so `write` makes an event of
    the stream's own partition current for the write and puts the old one
    back (FAUST_NOTES.md). Call `use_events` with each batch first."""

    def __init__(self, states_table: Any, last_events_table: Any) -> None:
        self.states_table = states_table
        self.last_events_table = last_events_table
        self._stream: faust.Stream | None = None
        self._latest_event_of: dict[str, Any] = {}
        self._event_of_partition: dict[int, Any] = {}
        self._last: Any = None

    def use_events(self, stream: faust.Stream, events: list) -> None:
        self._stream = stream
        self._latest_event_of = {}
        self._event_of_partition = {}
        for event in events:
            message = event.message
            self._event_of_partition[message.partition] = event
            if message.key:
                self._latest_event_of[message.key.decode(errors="replace")] = event
        self._last = events[-1] if events else None

    def previous(self, stream: str) -> tuple[bytes | None, bytes | None]:
        key = stream.encode()
        return self.states_table.data.get(key), self.last_events_table.data.get(key)

    def write(self, stream: str, state: bytes, last_event: bytes | None, partition: int | None) -> None:
        assert self._stream is not None, "use_events first"
        key = stream.encode()
        current = self._latest_event_of.get(stream)
        if current is None:  # only in repaired records: any event of its partition
            current = self._event_of_partition.get(partition, self._last)
        # Read, set and restore with no await in between: during an await the
        # stream's background task moves current_event on, and current_event
        # is also what take_events acks next.
        saved = self._stream.current_event
        try:
            self._stream._set_current_event(current)
            self.states_table[key] = state
            if last_event is not None:
                self.last_events_table[key] = last_event
        finally:
            self._stream._set_current_event(saved)

    def restore(self, stream: str, previous: tuple[bytes | None, bytes | None]) -> None:
        key = stream.encode()
        for table, value in zip((self.states_table, self.last_events_table), previous):
            if value is None:
                table.data.pop(key, None)
            else:
                table.data[key] = value
