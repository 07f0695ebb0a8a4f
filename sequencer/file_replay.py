"""``sequencer replay`` of files, on one process or split by stream across several.

Streams fold independently (SPEC 5 never looks across streams), so a replay
can split them the way a Kafka topic splits its keys: each process reads every
input file but keeps only the rows of its own streams (``StreamPartition``),
folds them, writes its decisions to a part file and saves its streams'
checkpoints. The parent merges the parts in (date, stream) order and the
rejects in (file, line) order, so every output is the same, byte for byte, as
a single-process run (tests/test_file_replay.py checks it).

Nothing is written unless every process has read its input: a file that
cannot be read fails the whole run before any checkpoint changes.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import threading
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

from .checkpoints import CheckpointStore
from .domain import SequencerConfig, SequencerError, StreamState
from .record_files import DecisionCsvWriter, write_rejects_csv
from .replay import replay_events
from .sources import Reject, StreamPartition, read_day_events

#: Below this much input a second process costs more than it saves (fork,
#: a second pass over the files, the merge).
PARALLEL_MIN_BYTES = 2 << 20
MAX_JOBS = 8


@dataclass
class ReplaySummary:
    """What a replay did, summed over its partitions."""

    events: int = 0
    rows: int = 0
    streams: int = 0
    applied: int = 0
    already_applied: int = 0
    after_until: int = 0
    rejects: list[Reject] = field(default_factory=list)
    jobs: int = 1

    def add(self, other: "ReplaySummary") -> None:
        for name in ("events", "rows", "streams", "applied", "already_applied", "after_until"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejects.extend(other.rejects)


class _Progress:
    """Bytes read, events found and folded, per partition; shared memory when partitions are processes."""

    def __init__(self, jobs: int, context: Any = None) -> None:
        # Each slot has one writer; the parent only reads, so no lock is needed.
        self.bytes = context.Array("q", jobs, lock=False) if context else [0] * jobs
        self.totals = context.Array("q", jobs, lock=False) if context else [0] * jobs
        self.done = context.Array("q", jobs, lock=False) if context else [0] * jobs
        self.read = context.Array("b", jobs, lock=False) if context else [0] * jobs


@dataclass
class ReplayWatch:
    """What a progress display hears: bytes read (each file is read once per
    partition, so this counts one pass), then the number of day events, then
    increments of events folded."""

    on_read: Callable[[int], None] | None = None
    on_total: Callable[[int], None] | None = None
    on_progress: Callable[[int], None] | None = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def choose_jobs(paths: list[Path], requested: int | None) -> int:
    """``requested`` if given; else one process per core (up to MAX_JOBS) for big inputs."""
    if requested is not None:
        if requested < 1:
            raise SequencerError(f"--jobs must be at least 1, got {requested}")
        return requested if _can_fork() else 1
    if not _can_fork() or sum(p.stat().st_size for p in paths) < PARALLEL_MIN_BYTES:
        return 1
    return max(1, min(available_cores(), MAX_JOBS))


def _can_fork() -> bool:
    # The partitions inherit the loaded states and config; spawn would have to
    # pickle them (and mapping proxies do not pickle).
    return "fork" in multiprocessing.get_all_start_methods()


def replay_files(paths: list[Path], config: SequencerConfig, states: dict[str, StreamState],
                 out_dir: Path, store: CheckpointStore, *, until: str | None = None, jobs: int = 1,
                 watch: ReplayWatch | None = None) -> ReplaySummary:
    """Fold ``paths`` on top of ``states``; write decisions, rejects and checkpoints."""
    watch = watch or ReplayWatch()
    out_dir.mkdir(parents=True, exist_ok=True)
    if jobs == 1:
        progress = _Progress(1)
        barrier = _Ready(watch.on_total, progress)
        summary = _replay_partition(paths, config, states, out_dir / "decisions.csv", store, until,
                                    None, progress, barrier, watch)
    else:
        summary = _replay_in_processes(paths, config, states, out_dir, store, until, jobs, watch)
    summary.rejects.sort(key=_reject_order(paths))
    write_rejects_csv(out_dir / "rejects.csv", summary.rejects)
    summary.jobs = jobs
    return summary


class _Ready:
    """The single-process stand-in for the barrier: reports the total once read."""

    def __init__(self, on_total: Callable[[int], None] | None, progress: _Progress) -> None:
        self.on_total = on_total
        self.progress = progress

    def wait(self) -> None:
        if self.on_total is not None:
            self.on_total(self.progress.totals[0])


def _replay_partition(paths: list[Path], config: SequencerConfig, states: dict[str, StreamState],
                      decisions_path: Path, store: CheckpointStore, until: str | None,
                      partition: StreamPartition | None, progress: _Progress, barrier: Any,
                      watch: ReplayWatch | None = None) -> ReplaySummary:
    slot = 0 if partition is None else partition.index
    on_read = watch.on_read if watch is not None else None
    on_progress = watch.on_progress if watch is not None else None

    def read(count: int) -> None:
        progress.bytes[slot] += count
        if on_read is not None:
            on_read(count)

    batch = read_day_events(paths, config, partition, read)
    if partition is not None:
        states = {s: state for s, state in states.items() if partition.owns(s)}
    progress.totals[slot] = len(batch.events)
    progress.read[slot] = 1
    barrier.wait()

    def folded(count: int) -> None:
        progress.done[slot] += count
        if on_progress is not None:
            on_progress(count)

    with decisions_path.open("w", newline="", encoding="utf-8") as handle:
        writer = DecisionCsvWriter(handle)
        result = replay_events(batch.events, config, states, until=until,
                               on_decision=writer.write, on_progress=folded)
    store.save_all(result.states[s] for s in sorted(result.states))
    return ReplaySummary(len(batch.events), batch.rows, len(result.states), result.applied,
                         result.already_applied, result.after_until, batch.rejects)


def _replay_in_processes(paths: list[Path], config: SequencerConfig, states: dict[str, StreamState],
                         out_dir: Path, store: CheckpointStore, until: str | None, jobs: int,
                         watch: ReplayWatch) -> ReplaySummary:
    context = multiprocessing.get_context("fork")
    progress = _Progress(jobs, context)
    barrier = context.Barrier(jobs)
    parts = [out_dir / f".decisions.part{i}.csv" for i in range(jobs)]
    pipes, processes = [], []
    try:
        for index in range(jobs):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_partition_main, name=f"replay-{index}", daemon=True,
                args=(sender, paths, config, states, parts[index], store, until,
                      StreamPartition(index, jobs), progress, barrier))
            process.start()
            sender.close()
            pipes.append(receiver)
            processes.append(process)
        replies = _collect(pipes, progress, barrier, watch)
        failures = [r for r in replies if "error" in r]
        if failures:
            first = next((f for f in failures if f["error"] != _ABORTED), failures[0])
            raise (SequencerError if first.get("known") else RuntimeError)(first["error"])
        summary = ReplaySummary()
        for reply in replies:
            summary.add(reply["summary"])
        _merge_decisions(parts, out_dir / "decisions.csv")
        return summary
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        for part in parts:
            part.unlink(missing_ok=True)


_ABORTED = "another partition failed before writing"


def _partition_main(sender: Any, paths: list[Path], config: SequencerConfig,
                    states: dict[str, StreamState], decisions_path: Path, store: CheckpointStore,
                    until: str | None, partition: StreamPartition, progress: _Progress,
                    barrier: Any) -> None:
    try:
        summary = _replay_partition(paths, config, states, decisions_path, store, until,
                                    partition, progress, barrier)
        sender.send({"summary": summary})
    except threading.BrokenBarrierError:
        sender.send({"error": _ABORTED})
    except SequencerError as error:
        barrier.abort()
        sender.send({"error": str(error), "known": True})
    except BaseException:  # noqa: BLE001 - the parent reports it; this process ends here
        barrier.abort()
        sender.send({"error": f"replay partition {partition.index} failed:\n{traceback.format_exc()}"})
    finally:
        sender.close()


def _collect(pipes: list, progress: _Progress, barrier: Any, watch: ReplayWatch) -> list[dict]:
    """Each partition's reply, reporting progress meanwhile.

    Only a partition holds the writing end of its pipe, so a partition that
    dies (killed, out of memory) shows as end-of-file; the barrier is broken
    then so that the others do not wait for it.
    """
    replies: dict[int, dict] = {}
    waiting = {pipe: i for i, pipe in enumerate(pipes)}
    reported = read_reported = 0
    total_sent = False
    while waiting:
        for ready in wait(list(waiting), timeout=0.2):
            index = waiting.pop(ready)
            try:
                replies[index] = ready.recv()
            except EOFError:
                barrier.abort()
                replies[index] = {"error": f"replay partition {index} ended without a reply"}
        read = sum(progress.bytes) // len(pipes)
        if watch.on_read is not None and read > read_reported:
            watch.on_read(read - read_reported)
            read_reported = read
        if not total_sent and all(progress.read):
            total_sent = True
            if watch.on_total is not None:
                watch.on_total(sum(progress.totals))
        done = sum(progress.done)
        if watch.on_progress is not None and done > reported:
            watch.on_progress(done - reported)
            reported = done
    return [replies[i] for i in range(len(pipes))]


def _merge_decisions(parts: list[Path], target: Path) -> None:
    # Each part is in (date, stream) order and the parts hold disjoint streams.
    # A decision is one line whose first fields are stream, instrument, date:
    # names match [A-Za-z0-9_-] and dates are ISO, so they are never quoted.
    handles = [part.open(newline="", encoding="utf-8") for part in parts]
    try:
        headers = [handle.readline() for handle in handles]
        with target.open("w", newline="", encoding="utf-8") as out:
            out.write(headers[0])
            out.writelines(line for _, _, line in heapq.merge(*(_keyed(h) for h in handles)))
    finally:
        for handle in handles:
            handle.close()


def _keyed(lines: Any) -> Any:
    for line in lines:
        stream, _, date, _ = line.split(",", 3)
        yield date, stream, line


def _reject_order(paths: list[Path]) -> Callable[[Reject], tuple[int, int]]:
    position: dict[str, int] = {}
    for i, path in enumerate(paths):
        position.setdefault(str(path), i)
    return lambda reject: (position.get(reject.source, len(paths)), reject.line or 0)
