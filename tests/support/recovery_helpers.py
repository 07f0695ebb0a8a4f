"""Helpers for the recovery tests: real ``sequencer worker`` processes, isolated by names.

Each `Setup` has its own topics, config name (so its own Faust app id, consumer
group and changelog topics) and state dir, so tests can share a broker.
Every process started here is stopped by the caller (``stop``/``kill``).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import msgpack

from sequencer.domain import DayEvent, Decision, SequencerConfig, state_to_dict
from sequencer.app.replay import replay_events
from streamer.publisher import EventPublisher

from tests.support.kafka_io import read_topic_values
from tests.support.worker_process import WorkerProcess, WorkerSetup

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"


@dataclass
class Setup(WorkerSetup):
    """A ``WorkerSetup`` that can also run the CLI, send raw records and read dead letters."""

    name: str = field(default_factory=lambda: "r" + uuid.uuid4().hex[:10])

    def env(self) -> dict[str, str]:
        return {**super().env(), "PYTHONPATH": str(ROOT)}

    def start_worker(self, log_path: Path, create_topics: bool = True) -> WorkerProcess:
        if create_topics:
            self.create_topics()
        return WorkerProcess.start(self, log_path)

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """``sequencer ARGS --config-name NAME --state-dir DIR`` in a subprocess."""
        command = [sys.executable, "-m", "sequencer.cli.main", *args, "--config-name", self.name,
                   "--state-dir", str(self.state_dir)]
        return subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=timeout)

    def produce_raw(self, records: list[tuple[bytes | None, bytes | None]], partition: int | None = None) -> dict[int, int]:
        """Send raw (key, value) records one by one; partition -> next offset."""
        async def go() -> dict[int, int]:
            from aiokafka import AIOKafkaProducer
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                        max_request_size=8 * 1024 * 1024)
            await producer.start()
            ends: dict[int, int] = {}
            try:
                for key, value in records:
                    meta = await producer.send_and_wait(self.topic_events, value=value, key=key,
                                                        partition=partition)
                    ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
            finally:
                await producer.stop()
            return ends
        return asyncio.run(go())

    def dead_letters(self) -> list[dict]:
        return [msgpack.unpackb(value, raw=False) for value in read_topic_values(self.bootstrap, self.topic_dead_letters)]


def comparable(state) -> dict:
    """The state document without what depends on the transport (offsets)."""
    doc = state_to_dict(state)
    doc.pop("source_offsets")
    return doc


def replay(events: list[DayEvent], config: SequencerConfig | None = None):
    """The batch path (`sequencer replay`): final states and decisions."""
    decisions = []
    result = replay_events(events, config or SequencerConfig(), on_decision=decisions.append)
    return result.states, decisions


# --- crash loop -------------------------------------------------------------------


class PacedPublisher:
    """Publishes ``events`` at an even pace over ``seconds`` in a thread of its own."""

    def __init__(self, setup: Setup, events: list[DayEvent], seconds: float) -> None:
        import threading

        self.ends: dict[int, int] = {}
        self._failure: list[BaseException] = []

        async def go() -> None:
            async with EventPublisher(setup.bootstrap, setup.topic_events) as publisher:
                await publisher.publish_events(events, rate=len(events) / seconds)
                self.ends.update(publisher.end_offsets)

        def publish() -> None:
            try:
                asyncio.run(go())
            except BaseException as error:  # noqa: BLE001 - raised by join
                self._failure.append(error)

        self._thread = threading.Thread(target=publish, name="paced-publisher")
        self._thread.start()

    def join(self, raise_failure: bool = True) -> dict[int, int]:
        """Wait for the last event; partition -> end offset."""
        self._thread.join()
        if raise_failure and self._failure:
            raise self._failure[0]
        return self.ends


@dataclass
class CrashReport:
    kills: int
    events: int
    differences: list[str]
    seconds: float
    kill_times: list[float]

    @property
    def count(self) -> int:
        return len(self.differences)


def read_raw_decisions(setup: Setup) -> list[dict]:
    """Every record of the decisions topic, repeats included."""
    return [Decision.from_dict(msgpack.unpackb(value, raw=False)).to_dict()
            for value in read_topic_values(setup.bootstrap, setup.topic_decisions)]


def wait_caught_up(setup: Setup, ends: dict[int, int], worker: WorkerProcess, keys: set, *,
                   timeout_s: float) -> str:
    """Wait until the group committed ``ends``, or every (stream, date) in ``keys`` has its
    decision on the decisions topic; says which. (After a SIGKILL, faust-streaming 0.15.3
    sometimes advances its committed offset by one record per commit interval:
    see docs/benchmarks_recovery.md. The work is done then, the commit lags.)"""
    from sequencer.adapters.kafka.lag import committed_offsets

    deadline = time.monotonic() + timeout_s
    complete_at = None
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail()
        try:
            committed = asyncio.run(committed_offsets(setup.bootstrap, setup.group, setup.topic_events))
        except Exception:  # noqa: BLE001 - the group may not exist yet
            committed = {}
        if all(committed.get(p, 0) >= end for p, end in ends.items()):
            return "committed offsets reached the end of the log"
        if complete_at is None:
            published = {(d["stream"], d["date"]) for d in read_raw_decisions(setup)}
            if keys <= published:
                complete_at = time.monotonic()
        if complete_at is not None and time.monotonic() - complete_at > 10:
            behind = {p: end - committed.get(p, 0) for p, end in ends.items() if committed.get(p, 0) < end}
            return f"every decision published; 10 s later commits still behind by {behind}"
        time.sleep(1.0)
    raise AssertionError(f"worker did not catch up within {timeout_s}s:\n{worker.log_tail()}")


def wait_holding(worker: WorkerProcess, last_dates: dict[str, str], *, timeout_s: float) -> None:
    """Until the worker's ``GET /streams`` shows every stream at its last date."""
    import json
    import urllib.request

    deadline = time.monotonic() + timeout_s
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log_tail()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{worker.web_port}/streams", timeout=2) as reply:
                seen = {row["stream"]: row["last_processed_date"] for row in json.load(reply)}
        except OSError:
            seen = {}
        if all(seen.get(stream) == date for stream, date in last_dates.items()):
            return
        time.sleep(0.5)
    raise AssertionError(f"worker holds {seen}, expected {last_dates}:\n{worker.log_tail()}")


def run_crash_loop(setup: Setup, events: list[DayEvent], kills: int, work_dir: Path, *,
                   seed: int, publish_seconds: float = 20.0, alive_range: tuple[float, float] = (2.0, 12.0),
                   log=print) -> CrashReport:
    """Publish ``events`` at a steady pace while a worker is SIGKILLed ``kills`` times at
    random moments and restarted; then let a last worker catch up and stop it cleanly.

    Returns every difference from `sequencer replay` of the same events:
    checkpoint states, ``sequencer verify`` (table and checkpoints against the
    log), and the decisions (deduplicated by (stream, date); repeats must be
    identical).
    """
    import random

    rng = random.Random(seed)
    started = time.monotonic()
    setup.create_topics()
    publisher = PacedPublisher(setup, events, publish_seconds)
    kill_times = []
    try:
        for round_ in range(kills):
            worker = setup.start_worker(work_dir / f"worker{round_}.log")
            alive = rng.uniform(*alive_range)
            time.sleep(alive)
            if not worker.alive():
                raise AssertionError(f"worker {round_} exited by itself:\n{worker.log_tail()}")
            worker.kill()
            kill_times.append(round(alive, 2))
            log(f"kill {round_ + 1}/{kills}: SIGKILL after {alive:.1f}s ({committed_total(setup)} events committed)")
        ends = publisher.join()
        finish_with_one_worker(setup, events, ends, work_dir, log)
    finally:
        publisher.join(raise_failure=False)

    differences = differences_from_replay(setup, events, log)
    return CrashReport(kills, len(events), differences, time.monotonic() - started, kill_times)


def committed_total(setup: Setup) -> int:
    """Events the group has committed, over every partition (0 before the group exists)."""
    from sequencer.adapters.kafka.lag import committed_offsets

    try:
        return sum(asyncio.run(committed_offsets(setup.bootstrap, setup.group, setup.topic_events)).values())
    except Exception:  # noqa: BLE001 - the group may not exist yet
        return 0


#: What `run_group_chaos` may do to the group in a round, drawn with these weights.
CHAOS_INCIDENTS = {"kill": 3, "stop": 1, "pause": 2, "join": 1, "freeze": 2}


def run_group_chaos(setup: Setup, broker, events: list[DayEvent], rounds: int, work_dir: Path, *,
                    seed: int, workers: int = 2, publish_seconds: float = 40.0,
                    gap_range: tuple[float, float] = (2.0, 8.0), pause_range: tuple[float, float] = (1.0, 9.0),
                    log=print) -> CrashReport:
    """Publish ``events`` at a steady pace to a group of ``workers`` workers while, every
    few seconds, one incident of `CHAOS_INCIDENTS` strikes: a member SIGKILLed and
    replaced, a member stopped cleanly (SIGTERM) and replaced, the broker frozen
    (SIGSTOP, longer than the session timeout at times, so the group rebalances after
    SIGCONT), a member frozen likewise (a long GC or VM pause: the group gives its
    partitions to the others, and it wakes up with a batch in flight), or one more
    member joining (the group then has one too many, and the
    next ``join`` kills one instead). At the end every member is SIGKILLed and a last
    worker alone catches up; returns every difference from `sequencer replay`."""
    import random

    rng = random.Random(seed)
    started = time.monotonic()
    setup.create_topics()
    publisher = PacedPublisher(setup, events, publish_seconds)
    members: list[WorkerProcess] = []
    incidents: list[float] = []
    count = 0

    def start() -> None:
        nonlocal count
        members.append(setup.start_worker(work_dir / f"worker{count}.log", create_topics=False))
        count += 1

    try:
        for _ in range(workers):
            start()
        for round_ in range(rounds):
            gap = rng.uniform(*gap_range)
            time.sleep(gap)
            for member in members:
                if not member.alive():
                    raise AssertionError(f"a worker exited by itself:\n{member.log_tail()}")
            kind = rng.choices(list(CHAOS_INCIDENTS), weights=list(CHAOS_INCIDENTS.values()))[0]
            if kind == "join" and len(members) > workers:
                kind = "kill"
            if kind in ("kill", "stop"):
                member = members.pop(rng.randrange(len(members)))
                if kind == "kill":
                    member.kill()
                else:
                    # A member still importing dies of SIGTERM (exit -15) before its
                    # handlers are in place: a clean stop is of a running worker.
                    member.wait_ready()
                    code = member.stop()
                    if code != 0:
                        raise AssertionError(f"a worker exited {code} on SIGTERM:\n{member.log_tail()}")
                if len(members) < workers:
                    start()
                what = f"{'SIGKILL' if kind == 'kill' else 'SIGTERM'} of a member, {len(members)} now"
            elif kind == "pause":
                frozen = rng.uniform(*pause_range)
                broker.pause()
                try:
                    time.sleep(frozen)
                finally:
                    broker.resume()
                what = f"broker frozen {frozen:.1f} s"
            elif kind == "freeze":
                frozen = rng.uniform(*pause_range)
                member = rng.choice(members)
                member.process.send_signal(signal.SIGSTOP)
                try:
                    time.sleep(frozen)
                finally:
                    member.process.send_signal(signal.SIGCONT)
                what = f"a member frozen {frozen:.1f} s"
            else:
                start()
                what = f"a member joined, {len(members)} now"
            incidents.append(round(gap, 2))
            log(f"round {round_ + 1}/{rounds} after {gap:.1f} s: {what} ({committed_total(setup)} events committed)")
        ends = publisher.join()
        for member in members:
            member.kill()
        members.clear()
        finish_with_one_worker(setup, events, ends, work_dir, log)
    finally:
        for member in members:
            member.kill()
        publisher.join(raise_failure=False)

    differences = differences_from_replay(setup, events, log)
    return CrashReport(rounds, len(events), differences, time.monotonic() - started, incidents)



def loop_on_own_broker(prefix: str, run, summary) -> int:
    """The shell of bench/crash_loop.py and bench/chaos_loop.py: the real data on a
    fresh embedded broker, ``run(setup, broker, events, work_dir)`` (a `CrashReport`),
    its differences printed, then ``summary(report, seconds)``. Exit status 1 when
    there is any difference; the folder with the worker logs is kept then (the
    evidence) and removed otherwise."""
    import shutil
    import tempfile

    from sequencer.adapters.files.sources import read_day_events
    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker

    events = read_day_events(sorted(SAMPLE.glob("*.csv")), SequencerConfig()).events
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    with EmbeddedBroker(log_path=tmp / "broker.log") as broker:
        setup = Setup(broker.bootstrap, tmp / "state")
        started = time.monotonic()
        report = run(setup, broker, events, tmp)
        for line in report.differences:
            print(line)
        print(summary(report, time.monotonic() - started))
    if report.count:
        print(f"logs kept in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0

def finish_with_one_worker(setup: Setup, events: list[DayEvent], ends: dict[int, int], work_dir: Path,
                           log=print) -> None:
    """Start a last worker, let it catch up with ``ends`` and hold every stream at its
    last date, then stop it cleanly (its stop writes the final checkpoints)."""
    worker = setup.start_worker(work_dir / "worker-final.log")
    try:
        worker.wait_ready()
        caught_up = wait_caught_up(setup, ends, worker, {(e.stream, e.date) for e in events}, timeout_s=180)
        log(f"final worker: {caught_up}")
        # The offsets may have been committed by a killed worker: this one
        # must also hold every stream (its table restored) before its stop
        # writes the final checkpoints.
        last_dates: dict[str, str] = {}
        for event in events:
            last_dates[event.stream] = max(last_dates.get(event.stream, ""), event.date)
        wait_holding(worker, last_dates, timeout_s=120)
    finally:
        code = worker.stop()
    assert code == 0, f"final worker exited {code} on SIGTERM; log {worker.log_path}:\n{worker.log_tail()}"


def differences_from_replay(setup: Setup, events: list[DayEvent], log=print) -> list[str]:
    """Every difference of what the workers left from `sequencer replay` of ``events``:
    checkpoint states, ``sequencer verify`` (table and checkpoints against the log), and
    the decisions (deduplicated by (stream, date); repeats must be identical)."""
    differences: list[str] = []
    expected_states, expected_decisions = replay(events)
    loaded, refused = setup.store().load_all()
    differences += [f"refused checkpoint: {e}" for e in refused]
    for stream in sorted(set(loaded) | set(expected_states)):
        if stream not in loaded or stream not in expected_states:
            differences.append(f"{stream}: checkpoint {'missing' if stream not in loaded else 'unexpected'}")
            continue
        got, want = comparable(loaded[stream].state), comparable(expected_states[stream])
        differences += [f"{stream} checkpoint {k}: expected {want[k]!r} found {got[k]!r}"
                        for k in sorted(want) if want[k] != got.get(k)]
    verified = setup.cli("verify")
    if verified.returncode != 0:
        differences += [f"verify: {line}" for line in verified.stdout.splitlines() if line.startswith("DRIFT")] \
            or [f"verify exited {verified.returncode}: {verified.stdout[-500:]} {verified.stderr[-500:]}"]
    raw = read_raw_decisions(setup)
    by_key: dict[tuple[str, str], dict] = {}
    for decision in raw:
        key = (decision["stream"], decision["date"])
        if key in by_key and by_key[key] != decision:
            differences.append(f"decision {key} published twice with different content")
        by_key.setdefault(key, decision)
    want_decisions = {(d.stream, d.date): d.to_dict() for d in expected_decisions}
    for key in sorted(set(by_key) | set(want_decisions)):
        if key not in by_key:
            differences.append(f"decision {key} never published")
        elif key not in want_decisions:
            differences.append(f"decision {key} published but replay has none")
        elif by_key[key] != want_decisions[key]:
            differences.append(f"decision {key} differs: {by_key[key]} != {want_decisions[key]}")
    log(f"{len(raw)} decision records for {len(by_key)} (stream, date) keys; {len(events)} events")
    return differences
