"""The one harness for a real ``sequencer worker`` process in tests, isolated by names.

Each ``WorkerSetup`` gets its own topics, config name (so its own Faust app id,
consumer group and changelog topics) and state dir, so tests can share the
session's broker. ``setup.start_worker(log_path)`` starts a `WorkerProcess`;
always stop it (``with setup.start_worker(...) as worker:`` does).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sequencer.adapters.kafka.embedded_broker import free_port
from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder
from sequencer.adapters.kafka.decision_log import read_decisions, wait_until_consumed
from sequencer.domain import DayEvent, SequencerConfig
from streamer.publisher import EventPublisher


@dataclass
class WorkerSetup:
    bootstrap: str
    state_dir: Path
    name: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:10])
    partitions: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    #: ``SEQUENCER_API_TOKEN`` for the worker; None: no token (one set in the
    #: environment running the tests is not passed on).
    token: str | None = None
    #: Periodic checkpoints; None: the worker's own default.
    checkpoint_every_seconds: float | None = 2

    @property
    def topic_events(self) -> str:
        return f"{self.name}.day-events"

    @property
    def topic_decisions(self) -> str:
        return f"{self.name}.decisions"

    @property
    def topic_dead_letters(self) -> str:
        return f"{self.name}.dead-letters"

    @property
    def group(self) -> str:
        return f"sequencer-{self.name}"

    def topic_env(self) -> dict[str, str]:
        """The variables naming this setup's topics (for in-process CLI calls too)."""
        return {"SEQUENCER_TOPIC_EVENTS": self.topic_events, "SEQUENCER_TOPIC_DECISIONS": self.topic_decisions,
                "SEQUENCER_TOPIC_DEAD_LETTERS": self.topic_dead_letters}

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("SEQUENCER_API_TOKEN", None)
        env.update(self.topic_env(), KAFKA_BOOTSTRAP_SERVERS=self.bootstrap, SEQUENCER_PARTITIONS=str(self.partitions))
        if self.token is not None:
            env["SEQUENCER_API_TOKEN"] = self.token
        if self.checkpoint_every_seconds is not None:
            env["SEQUENCER_CHECKPOINT_EVERY_SECONDS"] = str(self.checkpoint_every_seconds)
        env.update(self.extra_env)
        return env

    def store(self, config: SequencerConfig | None = None) -> CheckpointStore:
        return CheckpointStore(checkpoint_folder(self.state_dir, self.name), config or SequencerConfig())

    def create_topics(self) -> None:
        """Before anything produces: a broker may auto-create a topic with other partitions."""
        from sequencer.adapters.kafka.topics import create_topics

        asyncio.run(create_topics(self.bootstrap, {self.topic_events: self.partitions,
                                                   self.topic_decisions: self.partitions,
                                                   self.topic_dead_letters: self.partitions}))

    def start_worker(self, log_path: Path) -> "WorkerProcess":
        self.create_topics()
        return WorkerProcess.start(self, log_path)

    def publish(self, events: list[DayEvent]) -> dict[int, int]:
        """Publish with aiokafka; returns partition -> next offset from the acks."""
        async def go() -> dict[int, int]:
            async with EventPublisher(self.bootstrap, self.topic_events) as publisher:
                await publisher.publish_events(events)
                return dict(publisher.end_offsets)
        return asyncio.run(go())

    def wait_consumed(self, ends: dict[int, int], worker: "WorkerProcess", timeout_s: float = 120) -> None:
        ok = asyncio.run(wait_until_consumed(self.bootstrap, self.group, self.topic_events, ends,
                                             timeout_s=timeout_s, alive=worker.alive))
        assert ok, f"worker did not consume up to {ends}; log:\n{worker.log_tail()}"

    def decisions(self) -> list:
        return asyncio.run(read_decisions(self.bootstrap, self.topic_decisions))


@dataclass
class WorkerProcess:
    process: subprocess.Popen
    log_path: Path
    web_port: int

    @classmethod
    def start(cls, setup: WorkerSetup, log_path: Path) -> "WorkerProcess":
        port = free_port()
        command = [sys.executable, "-m", "sequencer.cli.main", "-v", "worker", "--config-name", setup.name,
                   "--state-dir", str(setup.state_dir), "--web-port", str(port)]
        handle = open(log_path, "a")
        process = subprocess.Popen(command, env=setup.env(), stdout=handle, stderr=subprocess.STDOUT)
        handle.close()
        return cls(process, log_path, port)

    @property
    def url(self) -> str:
        """Base URL of the worker's HTTP API."""
        return f"http://127.0.0.1:{self.web_port}"

    def __enter__(self) -> "WorkerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the worker's HTTP API answers: a SIGTERM before that finds no
        signal handler yet and ends the process without its final checkpoints."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.alive(), f"worker exited ({self.process.returncode}):\n{self.log_tail()}"
            try:
                with urllib.request.urlopen(self.url + "/streams", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"worker API not up after {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 60) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
            self.process.wait()

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""
