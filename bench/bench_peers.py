"""The worker against its peers (issue 18): the same fold, the same events, one broker each run.

    python bench/bench_peers.py [--days 10000] [--runs 5] [--systems worker,quix-idiomatic,...]

Systems, every one folding with ``sequencer.domain.apply_day``:

- ``worker``: a real ``sequencer worker`` process (Faust), as it is;
- ``quix-idiomatic``: quix-streams 3.28, the stream's state read from its
  store and decoded on every event (``bench/peers/run_quix.py``);
- ``quix-tuned``: the same with decoded states kept in the process;
- ``plain``: a plain aiokafka ``getmany`` loop around ``EventProcessor``,
  dict states, changelog topic (``bench/peers/run_plain.py``);
- ``bytewax``: bytewax 0.21, ``stateful_map``, recovery snapshots on
  (``bench/peers/run_bytewax.py``).

Each run: a fresh embedded broker, topics created (with ``retention.ms`` and
``retention.bytes`` set: quix-streams needs them in the DescribeConfigs
answer), the input published with the project's publisher
(``streamer.publisher.EventPublisher``), then the system started in its own
process. Start-up (imports, group join, topic checks, store opening) is
excluded: the peers time themselves from the first record in to the last
state persisted (``bench/peers/peer_common.py``); the worker is timed from
outside, from its first input-offset commit to the commit that covers every
event (it commits only after the batch's decisions and states are flushed).

Correctness, every run: the decisions read back from the decisions topic and
the final states read back from the system's own store (worker: its
checkpoints at stop; plain: its changelog topic; quix: its RocksDB store;
bytewax: its recovery snapshots) must equal the pure fold of the same events.
A run that fails the check is reported and left out of the figures.

Runs alternate: round r starts with the r-th system, so load that comes and
goes on a shared machine does not land on one system. quix-streams and
bytewax pin other confluent-kafka versions than the project, so they run in
their own virtualenvs under ``bench/.venvs/`` (git-ignored), created on first
use from ``bench/peers/requirements-*.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
VENVS = ROOT / "bench" / ".venvs"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

EVENTS_TOPIC = "peers.day-events"
DECISIONS_TOPIC = "peers.decisions"
DEAD_LETTERS_TOPIC = "peers.dead-letters"
STATES_TOPIC = "peers.states"   # the plain loop's changelog
PARTITIONS = 4
#: Retention set explicitly on every topic: quix-streams copies these two
#: settings to its changelog topics and Tansu's DescribeConfigs answer is
#: empty for a topic created without them.
TOPIC_CONFIG = {"retention.ms": "604800000", "retention.bytes": "-1"}

#: Seconds one system may take for one run before it counts as hung.
RUN_TIMEOUT_S = 900


@dataclass(frozen=True)
class System:
    name: str
    label: str
    venv: str | None          # None: the project's own interpreter
    runner: str | None        # None: the sequencer worker itself
    variant: str = ""


SYSTEMS = {s.name: s for s in (
    System("worker", "Sequencer worker (Faust), as it is", None, None),
    System("worker-direct", "Sequencer worker, records straight to the batches (SEQUENCER_DIRECT_INTAKE)",
           None, None, "SEQUENCER_DIRECT_INTAKE=true"),
    System("quix-idiomatic", "quix-streams 3.28, state decoded from its store on every event", "quix",
           "run_quix.py", "idiomatic"),
    System("quix-tuned", "quix-streams 3.28, decoded states kept in the process", "quix", "run_quix.py", "tuned"),
    System("plain", "plain aiokafka `getmany` + `EventProcessor`, dict state, changelog topic", None,
           "run_plain.py"),
    System("bytewax", "bytewax 0.21, snapshots on (Kafka I/O outside the Python thread)", "bytewax",
           "run_bytewax.py"),
)}
BASELINE = "plain"


@dataclass
class RunResult:
    system: str
    round: int
    rate: float | None
    seconds: float | None
    correct: bool
    detail: str


# --- setup -------------------------------------------------------------------

def ensure_venv(name: str) -> Path:
    """The interpreter of peer virtualenv ``name``, created from its requirements file on first use."""
    python = VENVS / name / "bin" / "python"
    requirements = PEERS / f"requirements-{name}.txt"
    stamp = VENVS / name / ".requirements"
    if python.exists() and stamp.exists() and stamp.read_text() == requirements.read_text():
        return python
    print(f"setting up bench/.venvs/{name} from {requirements.relative_to(ROOT)} (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
    stamp.write_text(requirements.read_text())
    return python


def interpreter(system: System) -> str:
    return sys.executable if system.venv is None else str(ensure_venv(system.venv))


async def create_bench_topics(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [NewTopic(name, PARTITIONS, 1, topic_configs=dict(TOPIC_CONFIG))
                  for name in (EVENTS_TOPIC, DECISIONS_TOPIC, DEAD_LETTERS_TOPIC)]
        topics.append(NewTopic(STATES_TOPIC, PARTITIONS, 1,
                               topic_configs=dict(TOPIC_CONFIG, **{"cleanup.policy": "compact"})))
        await admin.create_topics(topics)
    finally:
        await admin.close()


async def publish(bootstrap: str, events) -> int:
    from streamer.publisher import EventPublisher

    async with EventPublisher(bootstrap, EVENTS_TOPIC) as publisher:
        await publisher.publish_events(events)
    return sum(publisher.end_offsets.values()) - sum(publisher.start_offsets.values())


# --- the reference and the checks ----------------------------------------------

@dataclass(frozen=True)
class Reference:
    decisions: dict      # (stream, date) -> Decision
    states: dict         # stream -> state document without offsets


def comparable(doc: dict) -> dict:
    """A state document as the fold defines it: normalised, without offsets or save time."""
    from sequencer.domain import SequencerConfig, state_from_dict, state_to_dict

    normal = state_to_dict(state_from_dict(doc, SequencerConfig()))
    normal.pop("source_offsets", None)
    return normal


def pure_fold(events) -> Reference:
    from sequencer.domain import SequencerConfig, fold, initial_state, state_to_dict

    config = SequencerConfig()
    by_stream: dict[str, list] = {}
    for event in events:
        by_stream.setdefault(event.stream, []).append(event)
    decisions, states = {}, {}
    for stream, stream_events in by_stream.items():
        state, stream_decisions = fold(initial_state(stream, config), stream_events, config)
        states[stream] = comparable(state_to_dict(state))
        decisions.update(((d.stream, d.date), d) for d in stream_decisions)
    return Reference(decisions, states)


async def read_records(bootstrap: str, topic: str, *, enough: int | None = None, idle_s: float = 3.0) -> list:
    """Every record of ``topic`` from the beginning, until ``enough`` arrived or ``idle_s`` pass with none.

    Does not trust the broker's high watermark: Tansu reports a wrong one for
    batches written by librdkafka producers (quix-streams, bytewax).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        await consumer.seek_to_beginning()
        records: list = []
        last_new = time.monotonic()
        while time.monotonic() - last_new < (0.5 if enough is not None and len(records) >= enough else idle_s):
            for batch in (await consumer.getmany(timeout_ms=200, max_records=20000)).values():
                records.extend(batch)
                last_new = time.monotonic()
        return records
    finally:
        await consumer.stop()


def check_decisions(bootstrap: str, reference: Reference) -> str | None:
    """None when the decisions topic holds exactly the reference decisions (repeats equal); else what differs."""
    from sequencer.app.codecs import decode_decision

    records = asyncio.run(read_records(bootstrap, DECISIONS_TOPIC, enough=len(reference.decisions)))
    found, conflicting = {}, 0
    for record in records:
        decision = decode_decision(record.value)
        key = (decision.stream, decision.date)
        if key in found and found[key] != decision:
            conflicting += 1
        found.setdefault(key, decision)
    missing = reference.decisions.keys() - found.keys()
    extra = found.keys() - reference.decisions.keys()
    wrong = sum(1 for key in found.keys() & reference.decisions.keys() if found[key] != reference.decisions[key])
    if missing or extra or wrong or conflicting:
        return (f"decisions: {len(missing)} missing, {len(extra)} unexpected, {wrong} different, "
                f"{conflicting} repeats that differ (of {len(reference.decisions)}; {len(records)} records read)")
    return None


def check_states(docs: list[dict], reference: Reference) -> str | None:
    """None when the persisted states are exactly the reference's final states."""
    found = {}
    for doc in docs:
        normal = comparable(doc)
        found[normal["stream"]] = normal
    missing = reference.states.keys() - found.keys()
    wrong = sorted(s for s in found.keys() & reference.states.keys() if found[s] != reference.states[s])
    extra = found.keys() - reference.states.keys()
    if missing or wrong or extra:
        return f"states: missing {sorted(missing)}, different {wrong}, unexpected {sorted(extra)}"
    return None


def changelog_states(bootstrap: str) -> list[dict]:
    """The newest state per stream on the plain loop's changelog topic."""
    latest = {}
    for record in asyncio.run(read_records(bootstrap, STATES_TOPIC)):
        latest[record.key] = json.loads(record.value)
    return list(latest.values())


# --- one run -------------------------------------------------------------------

def run_peer(system: System, bootstrap: str, expected: int, work: Path) -> tuple[float, float, list[dict]]:
    """Start the peer's runner; returns (rate, seconds, persisted states)."""
    result = work / "result.json"
    command = [interpreter(system), str(PEERS / system.runner), "--bootstrap", bootstrap,
               "--events-topic", EVENTS_TOPIC, "--decisions-topic", DECISIONS_TOPIC, "--states-topic", STATES_TOPIC,
               "--expected", str(expected),
               "--work", str(work), "--result", str(result), "--variant", system.variant]
    with (work / "runner.log").open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, timeout=RUN_TIMEOUT_S)
    if done.returncode != 0 or not result.exists():
        raise RuntimeError(f"runner exited with {done.returncode}; see {work / 'runner.log'}")
    answer = json.loads(result.read_text())
    if answer["events"] != expected:
        raise RuntimeError(f"runner saw {answer['events']} events, expected {expected}")
    states = changelog_states(bootstrap) if system.name == "plain" else answer["states"]
    return answer["events"] / answer["seconds"], answer["seconds"], states


async def time_commits(bootstrap: str, group: str, expected: int, worker: subprocess.Popen,
                       log: Path) -> tuple[float, int, float]:
    """Poll the group's committed offsets on one admin connection: (first commit at, events it covered, last at).

    One connection for the whole run, polled every 0.1 s: a client per poll
    would take a share of the 2 cores from the worker it times.
    """
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from sequencer.adapters.kafka.lag import _committed_in

    partitions = [TopicPartition(EVENTS_TOPIC, p) for p in range(PARTITIONS)]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        first_at = first_done = None
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            try:
                done = sum(_committed_in(await admin.list_consumer_group_offsets(group, partitions=partitions),
                                         EVENTS_TOPIC).values())
            except Exception:  # noqa: BLE001 - the group does not exist yet
                done = 0
            now = time.perf_counter()
            if done and first_at is None:
                first_at, first_done = now, done
            if done >= expected:
                return first_at, first_done, now
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker exited or hung; see {log}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def run_worker(bootstrap: str, expected: int, work: Path, variant: str = "") -> tuple[float, float, list[dict]]:
    """A real ``sequencer worker``, timed by its commits; returns (rate, seconds, checkpointed states).
    ``variant``: ``NAME=VALUE`` settings for it, comma-separated."""
    from sequencer.adapters.kafka.embedded_broker import free_port
    from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder
    from sequencer.domain import SequencerConfig, state_to_dict

    config_name = "peers"
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=bootstrap, SEQUENCER_TOPIC_EVENTS=EVENTS_TOPIC,
               SEQUENCER_TOPIC_DECISIONS=DECISIONS_TOPIC, SEQUENCER_TOPIC_DEAD_LETTERS=DEAD_LETTERS_TOPIC,
               SEQUENCER_CONFIG_NAME=config_name)
    env.update(item.split("=", 1) for item in variant.split(",") if item)
    state_dir = work / "state"
    log_path = work / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen([sys.executable, "-m", "sequencer.cli.main", "worker", "--state-dir",
                                   str(state_dir), "--web-port", str(free_port())],
                                  env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            first_at, first_done, last_at = asyncio.run(
                time_commits(bootstrap, f"sequencer-{config_name}", expected, worker, log_path))
        finally:
            worker.terminate()   # the worker writes its final checkpoints at stop
            worker.wait(120)
    if last_at <= first_at:
        raise RuntimeError("the worker folded everything in its first batch: too few events to time")
    loaded, errors = CheckpointStore(checkpoint_folder(state_dir, config_name), SequencerConfig()).load_all()
    if errors:
        raise RuntimeError(f"worker checkpoints refused: {errors}")
    seconds = last_at - first_at
    return (expected - first_done) / seconds, seconds, [state_to_dict(c.state) for c in loaded.values()]


def run_once(system: System, events, reference: Reference, round_no: int, work: Path) -> RunResult:
    from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker

    work.mkdir(parents=True)
    with EmbeddedBroker(log_path=work / "broker.log") as broker:
        asyncio.run(create_bench_topics(broker.bootstrap))
        published = asyncio.run(publish(broker.bootstrap, events))
        if published != len(events):
            return RunResult(system.name, round_no, None, None, False, f"published {published} of {len(events)}")
        try:
            if system.runner is None:
                rate, seconds, states = run_worker(broker.bootstrap, published, work, system.variant)
            else:
                rate, seconds, states = run_peer(system, broker.bootstrap, published, work)
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            return RunResult(system.name, round_no, None, None, False, str(error))
        problems = [p for p in (check_decisions(broker.bootstrap, reference), check_states(states, reference)) if p]
    return RunResult(system.name, round_no, rate, seconds, not problems, "; ".join(problems) or "correct")


# --- report --------------------------------------------------------------------

def round_ratios(results: list[RunResult], system: str) -> list[float]:
    """The system's rate over the plain loop's in the same round, for every round where both were correct.

    Load on a shared machine moves for minutes at a time; runs of one round
    are minutes apart, so this ratio is steadier than a ratio of medians.
    """
    base = {r.round: r.rate for r in results if r.system == BASELINE and r.correct}
    return [r.rate / base[r.round] for r in results if r.system == system and r.correct and r.round in base]


def report(results: list[RunResult], systems: list[System], events: int, rounds: int) -> str:
    good = {s.name: [r.rate for r in results if r.system == s.name and r.correct] for s in systems}
    with_base = bool(good.get(BASELINE))
    lines = [f"{events:,} events, {rounds} alternating rounds; events/s, start-up excluded; "
             "only correct runs count", "",
             "| system, same fold (`sequencer.domain`) | events/s, median | spread (min-max) | correct runs |"
             + (" vs plain loop, same round: median (min-max) |" if with_base else ""),
             "|---|---|---|---|" + ("---|" if with_base else "")]
    for system in systems:
        rates = good[system.name]
        runs = sum(1 for r in results if r.system == system.name)
        if rates:
            row = (f"| {system.label} | {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f} "
                   f"| {len(rates)}/{runs} |")
            ratios = round_ratios(results, system.name) if with_base else []
            if with_base:
                row += (f" {statistics.median(ratios):.1%} ({min(ratios):.0%}-{max(ratios):.0%}) |" if ratios
                        else " - |")
        else:
            row = f"| {system.label} | - | - | 0/{runs} |" + (" - |" if with_base else "")
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=10_000, help="synthetic trading days (x12 streams = events)")
    parser.add_argument("--runs", type=int, default=5, help="alternating rounds (one run per system each)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, of {', '.join(SYSTEMS)}")
    parser.add_argument("--json", type=Path, help="also write every run's result here (updated after each run)")
    parser.add_argument("--report", type=Path, help="only print the table of a --json file written earlier")
    args = parser.parse_args()
    systems = [SYSTEMS[name] for name in args.systems.split(",")]
    if args.report:
        results = [RunResult(**r) for r in json.loads(args.report.read_text())]
        present = [s for s in systems if any(r.system == s.name for r in results)]
        print(report(results, present, args.days * 12, len({r.round for r in results})))
        return

    from synthetic import write_synthetic

    from sequencer.domain import SequencerConfig
    from sequencer.adapters.files.sources import read_day_events

    for system in systems:   # set up every virtualenv before the first timed run
        interpreter(system)
    work = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    csv_path = work / "synthetic.csv"
    write_synthetic(csv_path, args.days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
    events = read_day_events([csv_path], SequencerConfig()).events
    reference = pure_fold(events)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{len(events):,} day events, {len(reference.decisions):,} decisions in the pure fold; work in {work}",
          flush=True)

    results: list[RunResult] = []
    for round_no in range(args.runs):
        order = systems[round_no % len(systems):] + systems[:round_no % len(systems)]
        for system in order:
            result = run_once(system, events, reference, round_no, work / f"r{round_no}-{system.name}")
            results.append(result)
            rate = "-" if result.rate is None else f"{result.rate:,.0f} events/s in {result.seconds:.2f}s"
            print(f"round {round_no + 1}/{args.runs} {system.name}: {rate}; {result.detail}", flush=True)
            if args.json:   # after every run: a long session stopped early keeps what it measured
                args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1))
    print()
    print(report(results, systems, len(events), args.runs))


if __name__ == "__main__":
    main()
