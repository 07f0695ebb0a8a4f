"""Decision sends of the worker's batch commit: one produce batch per partition
against a send (and a future) per record, on the embedded broker.

    python bench/bench_decision_sends.py [--rounds 5]

The decisions are those of data/sample (15,926, encoded as the worker sends
them), sent in chunks of the worker's batch size with a flush and a wait for
every acknowledgement after each chunk, as step 1 and 2 of the batch commit
do. Baseline: aiokafka's ``send`` per record, gathering the futures (what the
worker did before; Faust's ``Producer.send`` adds a signal per record on top,
so the baseline is the cheaper side). Measured: `FaustProducerPort` (the
worker's own adapter) over the same aiokafka producer. The two alternate, each
round on a fresh topic, and the medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTITIONS = 4


class _FaustProducerShim:
    """The two calls `FaustProducerPort` makes of Faust's transport producer, over aiokafka."""

    def __init__(self, producer) -> None:
        self.producer = producer

    def _ensure_producer(self):
        return self.producer

    def key_partition(self, topic: str, key: bytes):
        from faust.types import TP

        return TP(topic, self.producer._partition(topic, None, None, None, key, None))

    async def flush(self) -> None:
        await self.producer.flush()


async def per_record(producer, topic: str, chunks) -> float:
    started = time.perf_counter()
    for chunk in chunks:
        pending = [await producer.send(topic, record.value, key=record.key) for record in chunk]
        await producer.flush()
        await asyncio.gather(*pending)
    return time.perf_counter() - started


async def per_partition(port, topic: str, chunks) -> float:
    started = time.perf_counter()
    for chunk in chunks:
        groups: dict[int, list] = {}
        for record in chunk:
            groups.setdefault(await port.partition_for(topic, record.key), []).append(record)
        pending = []
        for partition, group in groups.items():
            pending.extend(await port.send_batch(topic, partition, group))
        await port.flush()
        await asyncio.gather(*pending)
    return time.perf_counter() - started


async def run(bootstrap: str, rounds: int, chunks) -> tuple[list[float], list[float]]:
    from aiokafka import AIOKafkaProducer
    from types import SimpleNamespace

    from sequencer.adapters.faust.commit_ports import FaustProducerPort
    from sequencer.adapters.kafka.topics import create_topics

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=-1)
    await producer.start()
    port = FaustProducerPort(SimpleNamespace(producer=_FaustProducerShim(producer)))
    old, new = [], []
    try:
        for i in range(rounds + 1):  # round 0 warms up both paths
            topics = [f"bench-{uuid.uuid4().hex[:8]}.decisions" for _ in range(2)]
            await create_topics(bootstrap, {t: PARTITIONS for t in topics})
            await producer.partitions_for(topics[0])
            a = await per_record(producer, topics[0], chunks)
            b = await per_partition(port, topics[1], chunks)
            if i:
                old.append(a)
                new.append(b)
                print(f"round {i}: per record {a:.3f} s, per partition {b:.3f} s", flush=True)
    finally:
        await producer.stop()
    return old, new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from sequencer.app.batch_commit import Outgoing
    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker
    from sequencer.app.codecs import encode_decision
    from sequencer.domain import SequencerConfig
    from sequencer.app.replay import replay_events
    from sequencer.adapters.files.sources import read_day_events
    from sequencer.adapters.faust.worker import BATCH_SIZE

    config = SequencerConfig()
    events = read_day_events(sorted((ROOT / "data" / "sample").glob("*.csv")), config).events
    decisions: list = []
    replay_events(events, config, on_decision=decisions.append)
    records = [Outgoing("", d.stream.encode(), encode_decision(d)) for d in decisions]
    chunks = [records[i:i + BATCH_SIZE] for i in range(0, len(records), BATCH_SIZE)]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{len(records)} decisions in chunks of {BATCH_SIZE}, {PARTITIONS} partitions")
    with EmbeddedBroker() as broker:
        old, new = asyncio.run(run(broker.bootstrap, args.rounds, chunks))
    a, b = statistics.median(old), statistics.median(new)
    print(f"median per record {a:.3f} s ({len(records) / a:,.0f}/s), per partition {b:.3f} s "
          f"({len(records) / b:,.0f}/s): {a / b:.2f}x")


if __name__ == "__main__":
    main()
