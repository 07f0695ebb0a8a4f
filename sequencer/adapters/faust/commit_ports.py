"""Faust adapters of the batch commit's ports (`sequencer.app.batch_commit`)."""

from __future__ import annotations

from typing import Any, Awaitable, Sequence

import faust

from sequencer.adapters.faust.private_api import aiokafka_producer
from sequencer.app.batch_commit import Outgoing


class PartitionNotInMetadata(Exception):
    """The producer does not know the partition a batch is for yet; the batch is retried."""


class FaustProducerPort:
    """`ProducerPort` over the aiokafka producer under Faust's transport producer.

    One aiokafka ``BatchBuilder`` per topic partition: one future per produce
    batch instead of one per record (Faust's ``send`` also fires a signal and
    builds a future for every record)."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._known_topics: set[str] = set()

    def _aiokafka(self) -> Any:
        return aiokafka_producer(self.app.producer)

    async def partition_for(self, topic: str, key: bytes | None) -> int:
        if topic not in self._known_topics:
            await self._aiokafka().partitions_for(topic)  # loads the metadata the partitioner needs
            self._known_topics.add(topic)
        # The same partitioner as an unbatched send with partition=None.
        return self.app.producer.key_partition(topic, key).partition

    async def send_batch(self, topic: str, partition: int, records: Sequence[Outgoing]) -> list[Awaitable[Any]]:
        producer = self._aiokafka()
        try:
            return await self._send_batch(producer, topic, partition, records)
        except AssertionError as error:
            # aiokafka's "Unrecognized partition": its metadata of the topic is
            # older than the partition (a topic created or grown after it was
            # read). It refreshes metadata only every few minutes on its own,
            # so every retry of the batch met the same answer: ask again now.
            known = producer.client.cluster.partitions_for_topic(topic) or ()
            producer.client.force_metadata_update()
            raise PartitionNotInMetadata(
                f"{topic} partition {partition} is not in the producer's metadata ({error}; "
                f"{len(known)} partitions known): a topic created or grown just now, or one with fewer "
                "partitions than the events topic (the worker checks that at its start); "
                "the metadata is asked for again") from error

    @staticmethod
    async def _send_batch(producer: Any, topic: str, partition: int,
                          records: Sequence[Outgoing]) -> list[Awaitable[Any]]:
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

    `write` sets the values in the tables' memory (``table.data``, what a Faust
    table's ``__setitem__`` sets too) and hands their changelog records back to
    the batch commit, which produces them in one batch per changelog partition
    (`BatchCommit`): Faust's ``table[key] = value`` instead queues one
    ``send_soon`` per record in its producer buffer, whose flush waits for the
    records one at a time, and it needs a current event for the partition
    (FAUST_NOTES.md). The changelog partition is the stream's source
    partition, as a Faust table with ``use_partitioner=False`` picks it, so a
    worker that owns source partition p restores changelog partition p.
    Faust's changelog callback (``_on_changelog_sent``) is skipped with it: it
    records persisted offsets for a RocksDB store; the worker's is memory://."""

    def __init__(self, states_table: Any, last_events_table: Any) -> None:
        self.states_table = states_table
        self.last_events_table = last_events_table

    def previous(self, stream: str) -> tuple[bytes | None, bytes | None]:
        key = stream.encode()
        return self.states_table.data.get(key), self.last_events_table.data.get(key)

    def write(self, stream: str, state: bytes, last_event: bytes | None,
              partition: int | None) -> list[tuple[int, Outgoing]]:
        if partition is None:
            raise ValueError(f"no source partition for the state of {stream}: its changelog partition is unknown")
        key = stream.encode()
        records = []
        for table, value in ((self.states_table, state), (self.last_events_table, last_event)):
            if value is not None:
                table.data[key] = value
                records.append((partition, Outgoing(table.changelog_topic.get_topic_name(), key, value)))
        return records

    def restore(self, stream: str, previous: tuple[bytes | None, bytes | None]) -> None:
        key = stream.encode()
        for table, value in zip((self.states_table, self.last_events_table), previous):
            if value is None:
                table.data.pop(key, None)
            else:
                table.data[key] = value
