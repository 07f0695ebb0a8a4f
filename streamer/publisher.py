"""Publishing day events to the event topic, with retry when the broker is away.

Events are msgpack maps keyed by stream name. aiokafka's default partitioner
(murmur2, as the Java client) keeps each stream in one partition, so its days
stay in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Iterable

from sequencer.app.codecs import encode_event
from sequencer.domain import DayEvent

logger = logging.getLogger(__name__)

#: A batch is retried for this long before the producer gives up on it. Long on
#: purpose: a shorter expiry would let later days land before a retried one
#: and turn it into an out-of-order event.
DELIVERY_TIMEOUT_MS = 300_000

#: Acknowledgements are collected every this many records.
FLUSH_EVERY = 2000

#: Backoff between attempts to reach the broker: doubles up to the cap.
BACKOFF_START_S = 0.5
BACKOFF_CAP_S = 10.0


class EventPublisher:
    """An aiokafka producer that waits for the broker instead of failing.

    ``announce`` receives plain-language status lines ("broker unreachable,
    retrying in 2.0 s"), which the CLI prints; nothing is dropped while the
    broker is away: a failed send is retried until it succeeds or ``give_up_after_s``.
    """

    def __init__(self, bootstrap: str, topic: str, *, security: dict[str, Any] | None = None,
                 announce: Callable[[str], None] = logger.warning,
                 give_up_after_s: float | None = None, create_partitions: int | None = None) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        #: Create the topic, if it is missing, with this many partitions and every
        #: record kept, as the worker does (`create_topics`): a producer that wrote
        #: first would otherwise have the broker make it with its own defaults
        #: (its partition count; Apache Kafka's 7-day retention).
        self._create_partitions = create_partitions
        self._security = security or {}
        self._announce = announce
        self._give_up_after_s = give_up_after_s
        self._producer = None
        self._pending: list[asyncio.Future] = []
        self.sent = 0
        #: partition -> next offset after the last record this publisher wrote,
        #: from the broker's acknowledgements (exact, unlike a reported high watermark).
        self.end_offsets: dict[int, int] = {}
        self.start_offsets: dict[int, int] = {}  # partition -> first offset this publisher wrote

    async def __aenter__(self) -> "EventPublisher":
        await self._start_with_retry()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._producer is not None:
            try:
                await self._producer.stop()  # flushes what is buffered
            finally:
                self._producer = None

    async def _start_with_retry(self) -> None:
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        delay = BACKOFF_START_S
        first_failure = None
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                linger_ms=5,
                max_batch_size=256 * 1024,
                request_timeout_ms=DELIVERY_TIMEOUT_MS,
                retry_backoff_ms=250,
                **self._security,
            )
            try:
                await producer.start()
                if self._create_partitions is not None:
                    await self._create_topic()
            except (KafkaError, OSError) as error:
                await producer.stop()
                first_failure = first_failure or time.monotonic()
                self._check_give_up(first_failure, error)
                self._announce(f"broker {self.bootstrap} unreachable ({type(error).__name__}); "
                               f"retrying in {delay:.1f}s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP_S)
                continue
            if first_failure is not None:
                self._announce(f"broker {self.bootstrap} reachable again; publishing")
            self._producer = producer
            return

    async def _create_topic(self) -> None:
        from aiokafka.errors import KafkaError

        from sequencer.adapters.kafka.topics import create_topics

        try:
            await create_topics(self.bootstrap, {self.topic: self._create_partitions}, retained=[self.topic],
                                security=self._security)
        except KafkaError as error:
            if error.retriable:
                raise  # the broker went away again: retried with the connection
            # Not allowed to create topics here (ACLs, a policy): the topic is someone else's to make.
            self._announce(f"could not create {self.topic} ({type(error).__name__}: {error}); publishing "
                           "to it as it is")

    def _check_give_up(self, since: float, error: BaseException) -> None:
        if self._give_up_after_s is not None and time.monotonic() - since > self._give_up_after_s:
            raise ConnectionError(
                f"broker {self.bootstrap} unreachable for {self._give_up_after_s:.0f}s: {error}"
            ) from error

    async def send(self, key: bytes, value: bytes) -> None:
        """Queue one record; ``flush`` waits for its acknowledgement."""
        from aiokafka.errors import KafkaError

        delay = BACKOFF_START_S
        while True:
            try:
                future = await self._producer.send(self.topic, value=value, key=key)
                break
            except KafkaError as error:  # e.g. metadata unavailable while the broker is away
                self._announce(f"send to {self.topic} failed ({type(error).__name__}); retrying in {delay:.1f}s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_CAP_S)
        self._pending.append(future)
        if len(self._pending) >= FLUSH_EVERY:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every queued record is acknowledged.

        The producer itself retries a batch until ``DELIVERY_TIMEOUT_MS``; only
        an outage longer than that fails a record, and then this raises rather
        than let a day go missing (a re-run is safe: the worker skips duplicates).
        """
        pending, self._pending = self._pending, []
        if not pending:
            return
        waiting = asyncio.ensure_future(asyncio.gather(*pending))
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=5.0)
            if done:
                break
            self._announce(f"waiting for {self.bootstrap} to acknowledge {len(pending)} records "
                           "(broker slow or unreachable; retrying)")
        self.sent += len(pending)
        for metadata in waiting.result():
            if metadata.offset + 1 > self.end_offsets.get(metadata.partition, 0):
                self.end_offsets[metadata.partition] = metadata.offset + 1
            if metadata.offset < self.start_offsets.get(metadata.partition, metadata.offset + 1):
                self.start_offsets[metadata.partition] = metadata.offset

    async def publish_events(self, events: Iterable[DayEvent], *, rate: float | None = None,
                             on_progress: Callable[[int], None] | None = None) -> int:
        """Send events in order, at most ``rate`` per second; returns how many were sent."""
        count = 0
        started = time.monotonic()
        for event in events:
            await self.send_event(event)
            count += 1
            if on_progress is not None:
                on_progress(1)
            if rate:
                ahead = count / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await self.flush()
        return count

    async def send_event(self, event: DayEvent) -> None:
        await self.send(event.stream.encode(), encode_event(event))
