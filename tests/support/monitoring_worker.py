"""Helpers for tests that run a real worker subprocess on the session broker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from sequencer.broker import free_port


@dataclass
class Names:
    """A configuration name and topics no other test uses."""

    config_name: str
    events: str
    decisions: str
    dead_letters: str

    @property
    def group(self) -> str:
        return f"sequencer-{self.config_name}"

    def env(self) -> dict[str, str]:
        return {"SEQUENCER_TOPIC_EVENTS": self.events, "SEQUENCER_TOPIC_DECISIONS": self.decisions,
                "SEQUENCER_TOPIC_DEAD_LETTERS": self.dead_letters}


def unique_names(prefix: str) -> Names:
    tag = f"{prefix}{uuid.uuid4().hex[:8]}"
    return Names(tag, f"{tag}.events", f"{tag}.decisions", f"{tag}.dead")


class Worker:
    """``sequencer worker`` in a subprocess; always stop() it (a context manager does)."""

    def __init__(self, bootstrap: str, names: Names, state_dir: Path, log_path: Path,
                 partitions: int = 2, token: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, **names.env())
        env.pop("SEQUENCER_API_TOKEN", None)
        if token is not None:
            env["SEQUENCER_API_TOKEN"] = token
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sequencer.cli.main", "worker", "--bootstrap", bootstrap,
             "--config-name", names.config_name, "--state-dir", str(state_dir),
             "--web-port", str(self.port), "--partitions", str(partitions)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited ({self.process.returncode}): {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/streams", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"worker API not up after {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def create_topics(bootstrap: str, names: Names, partitions: int = 2) -> None:
    from sequencer.topics import create_topics as create

    asyncio.run(create(bootstrap, {names.events: partitions, names.decisions: partitions,
                                   names.dead_letters: partitions}))


def produce_one_by_one(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> dict[int, int]:
    """Send each record alone and wait for it (one record per batch: Tansu's high
    watermark is right only then); returns how many went to each partition."""
    from aiokafka import AIOKafkaProducer

    async def send() -> dict[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        await producer.start()
        counts: dict[int, int] = {}
        try:
            for key, value in records:
                meta = await producer.send_and_wait(topic, value, key=key)
                counts[meta.partition] = counts.get(meta.partition, 0) + 1
        finally:
            await producer.stop()
        return counts

    return asyncio.run(send())


def produce_in_batches(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> dict[int, int]:
    """Send all records at once with a linger, so the producer packs many into each
    batch (the case where Tansu's ListOffsets answer falls short); returns how
    many went to each partition, from the acknowledgements."""
    from aiokafka import AIOKafkaProducer

    async def send() -> dict[int, int]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=100)
        await producer.start()
        try:
            futures = [await producer.send(topic, value, key=key) for key, value in records]
            acks = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        counts: dict[int, int] = {}
        for meta in acks:
            counts[meta.partition] = counts.get(meta.partition, 0) + 1
        return counts

    return asyncio.run(send())


def list_offsets_ends(bootstrap: str, topic: str) -> dict[int, int]:
    """The ListOffsets (latest) answer per partition, as the broker gives it."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def read() -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

    return asyncio.run(read())
