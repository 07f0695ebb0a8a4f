"""A shorter fetch wait for the worker's consumer: the decision latency's floor.

Faust's aiokafka driver builds its consumer with ``fetch_max_wait_ms=1500``,
fixed. A broker answers a fetch with no data after that wait; Apache Kafka
answers early when records arrive meanwhile, the embedded broker (Tansu)
does not: a day event published into a quiet topic was seen by a plain
aiokafka consumer after 628 ms (median) with a 1,500 ms wait and after 13 ms
with a 50 ms one (docs/benchmarks.md, "Decision latency"). Under load the wait
does not matter (a fetch finds records at once); on an idle topic it costs one
empty fetch per ``wait_ms``.

The same hook reads committed records only (``read_committed``). Faust asks
for it only under its own exactly-once guarantee, which the worker does not
use; a feed written by a transactional producer (Kafka Streams, a Java client
with transactions) leaves aborted records in the log, and with Faust's
``read_uncommitted`` the worker would fold them. Without transactions both
levels read the same records. The embedded broker answers such fetches like
any other (it has no transactions, so aborted records are not tested here).

``install(app, wait_ms)`` subclasses whatever consumer class ``app.transport``
uses (Faust's, or the fast-drain one), so call it after `faust_consumer.install`.
It sets the aiokafka consumer's private ``_fetch_max_wait_ms`` and
``_isolation_level`` before the consumer starts (aiokafka 0.14 reads both when
it builds its fetcher).
"""

from __future__ import annotations

import logging
from typing import Any

from sequencer.adapters.kafka.log_reader import READ_ISOLATION

logger = logging.getLogger(__name__)

#: Milliseconds a fetch waits for records before the broker answers empty.
FETCH_MAX_WAIT_MS = 25


def install(app: Any, wait_ms: int = FETCH_MAX_WAIT_MS) -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    class ShortWaitThread(AIOKafkaConsumerThread):  # type: ignore[misc, valid-type]
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            if hasattr(consumer, "_fetch_max_wait_ms"):
                consumer._fetch_max_wait_ms = wait_ms
            else:  # another aiokafka: keep Faust's wait, and say so
                logger.warning("aiokafka consumer has no _fetch_max_wait_ms: keeping Faust's fetch wait")
            if hasattr(consumer, "_isolation_level"):
                consumer._isolation_level = READ_ISOLATION
            else:
                logger.warning("aiokafka consumer has no _isolation_level: records of aborted "
                               "transactions are read as Faust reads them")
            return consumer

    base = app.transport.Consumer

    class ShortFetchWaitConsumer(base):  # type: ignore[misc, valid-type]
        def _new_consumer_thread(self) -> Any:
            return ShortWaitThread(self, loop=self.loop, beacon=self.beacon)

    app.transport.Consumer = ShortFetchWaitConsumer
