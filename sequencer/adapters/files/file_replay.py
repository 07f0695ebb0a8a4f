"""``sequencer replay`` of files, on one process or split by stream across several.

Streams fold independently (SPEC 5 never looks across streams), so a replay
can split them the way a Kafka topic splits its keys. The parent reads the
files the column reader takes (``csv_columns``: big clean CSVs; their parse
already runs on every core), up to the first file the row reader must read;
then one process per partition is forked (``StreamPartition``). Each inherits
what was read (copy-on-write: nothing is sent), reads the remaining files for
its own streams' rows (so the row reader's work is split as well), builds its
streams' day events (``SourceRead``), folds them, writes its decisions to a
part file and saves its streams' checkpoints. The parent merges the parts in
(date, stream) order and the rejects in (file, line) order, so every output
is the same, byte for byte, as a single-process run
(tests/system/test_file_replay.py checks it).

A file that cannot be read fails the whole run, and nothing changes: the
checkpoints are saved into a staging folder and moved into place only once
decisions.csv and rejects.csv are complete (``state_folder.StagedCheckpoints``),
so a replay that fails, is killed or is interrupted before that leaves every
checkpoint as it was. A partition process ends when its parent dies.
"""

from __future__ import annotations

import ctypes
import heapq
import json
import multiprocessing
import os
import signal
import sys
import threading
import traceback
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterator

from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.domain import DayEvent, ReportPart, SequencerConfig, SequencerError, StreamState, TradeRules
from sequencer.domain.metrics import StreamDecisions
from sequencer.adapters.files.file_writes import naming
from sequencer.adapters.files.record_files import DecisionCsvWriter, write_rejects_csv
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import Reject, SourceRead, StreamPartition, read_sources
from sequencer.adapters.files.state_folder import StagedCheckpoints

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
    refused: int = 0  # of the rejects, events step 0 refused (out of order, corrected days)
    interrupted: bool = False  # a SIGINT came while the checkpoints were moved into place
    #: The performance report of the decisions, in parts of disjoint streams
    #: (one per process; ``PerformanceOf`` asked for it).
    performance: list[ReportPart] = field(default_factory=list)

    def add(self, other: "ReplaySummary") -> None:
        for name in ("events", "rows", "streams", "applied", "already_applied", "after_until", "refused"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rejects.extend(other.rejects)
        self.performance.extend(other.performance)


@dataclass(frozen=True)
class PerformanceOf:
    """Ask a replay for the performance report of its decisions under ``rules``
    (``ReplaySummary.performance``): each process reports its own streams from
    the decisions in memory, so the report costs no second reading of
    decisions.csv and runs on every core."""

    rules: TradeRules


@dataclass
class ReplayWatch:
    """What a progress display hears: bytes read, then the number of day
    events, then increments of events folded."""

    on_read: Callable[[int], None] | None = None
    on_total: Callable[[int], None] | None = None
    on_progress: Callable[[int], None] | None = None
    #: Called once every output is in place, checkpoints included: from then
    #: on, an interrupted replay has nonetheless done all its work.
    on_committed: Callable[[], None] | None = None


class _SharedProgress:
    """How far each partition of a split replay got, in memory shared with the
    parent: bytes of the files it reads itself (each reads all of them: one
    pass is their mean), its day events once read, events folded."""

    def __init__(self, jobs: int, context: Any) -> None:
        # Each slot has one writer; the parent only reads, so no lock is needed.
        self.bytes = context.Array("q", jobs, lock=False)
        self.totals = context.Array("q", jobs, lock=False)
        self.ready = context.Array("b", jobs, lock=False)
        self.done = context.Array("q", jobs, lock=False)

    def read_by(self, index: int) -> Callable[[int], None]:
        """What partition ``index`` calls with each increment of bytes read (in its own process)."""
        def read(count: int) -> None:
            self.bytes[index] += count
        return read

    def found(self, index: int, events: int) -> None:
        self.totals[index] = events
        self.ready[index] = 1

    def folded_by(self, index: int) -> Callable[[int], None]:
        """What partition ``index`` calls with each increment of events folded."""
        def folded(count: int) -> None:
            self.done[index] += count
        return folded


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
                 watch: ReplayWatch | None = None, keep: PerformanceOf | None = None) -> ReplaySummary:
    """Fold ``paths`` on top of ``states``; write decisions, rejects, then checkpoints.

    The checkpoints change only after decisions.csv and rejects.csv are
    complete: an exception or KeyboardInterrupt before that leaves them as
    they were. A SIGINT while they are being moved into place (milliseconds)
    waits until they are all in place; ``ReplaySummary.interrupted`` says so.
    """
    watch = watch or ReplayWatch()
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = StagedCheckpoints(store)
    staged.prepare()
    decisions = out_dir / "decisions.csv"
    unfinished = out_dir / ".decisions.csv.partial"
    try:
        # Split: the files the row reader reads are left to the partitions (each
        # reads its own streams' rows), so that its work is split too.
        read = read_sources(paths, config, watch.on_read, defer_rows=jobs > 1)
        if watch.on_total is not None and not read.unread:
            watch.on_total(read.count)
        if jobs == 1:
            summary, _ = _fold_partition(read.events(), config, states, unfinished, staged.store, until,
                                         watch.on_progress, keep)
        else:  # (its rows and rejects: those the partitions read)
            summary = _fold_in_processes(read, config, states, out_dir, unfinished, staged.store,
                                         until, jobs, watch, keep)
        summary.rows += read.rows
        summary.rejects[:0] = read.rejects  # the files' rejects first, as they were read
        summary.rejects.sort(key=_reject_order(paths))
        write_rejects_csv(out_dir / "rejects.csv", summary.rejects)
        with _sigint_deferred() as interrupted:
            os.replace(unfinished, decisions)
            staged.commit()
            if watch.on_committed is not None:
                watch.on_committed()
        summary.interrupted = bool(interrupted)
        return summary
    finally:
        unfinished.unlink(missing_ok=True)
        staged.discard()


@contextmanager
def _sigint_deferred() -> Iterator[list]:
    """Hold off SIGINT for the block (only the main thread can); the list is non-empty if one came."""
    heard: list = []
    if threading.current_thread() is not threading.main_thread():
        yield heard
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: heard.append(signum))
    try:
        yield heard
    finally:
        signal.signal(signal.SIGINT, previous)


def _fold_partition(events: list[DayEvent], config: SequencerConfig, states: dict[str, StreamState],
                    decisions_path: Path, store: CheckpointStore, until: str | None,
                    on_progress: Callable[[int], None] | None,
                    keep: PerformanceOf | None = None,
                    lengths: bool = False) -> tuple[ReplaySummary, list[int] | None]:
    """Fold one partition's events on its ``states``; ``store`` is the staging
    store of ``StagedCheckpoints``. The summary counts no rows and has no
    rejects of reading (whoever read the files adds them). With ``lengths``,
    also each decision row's length in bytes (``DecisionCsvWriter``), else None."""
    # The report's fields of each decision, kept while the decision is fresh
    # (the decision itself is freed once written).
    kept = StreamDecisions.for_rules(keep.rules) if keep is not None else None
    with naming(decisions_path), decisions_path.open("w", newline="", encoding="utf-8") as handle, \
            DecisionCsvWriter(handle, lengths=lengths) as writer:
        on_decision = writer.write if kept is None else _both(writer.write, kept.add)
        result = replay_events(events, config, states, until=until,
                               on_decision=on_decision, on_progress=on_progress)
    store.save_all(result.states[s] for s in sorted(result.states))
    rejects = [_refused(event, reason) for event, reason in result.refused]
    performance = []
    if kept is not None:
        performance.append(kept.report_part(keep.rules, breakdowns=False))  # performance.csv has none
    return ReplaySummary(len(events), 0, len(result.states), result.applied, result.already_applied,
                         result.after_until, rejects, len(result.refused), performance=performance), writer.lengths


def _both(first: Callable[[Any], None], second: Callable[[Any], None]) -> Callable[[Any], None]:
    """One callback that calls ``first`` then ``second``."""
    def both(value: Any) -> None:
        first(value)
        second(value)
    return both


def _refused(event: DayEvent, reason: str) -> Reject:
    # A day event is grouped from rows, maybe of several files: no one file and
    # line to name; the stream and date say which rows, the raw cell what was read.
    return Reject("", None, reason, json.dumps(event.to_dict(), separators=(",", ":")),
                  event.stream, event.date)


def _fold_in_processes(read: SourceRead, config: SequencerConfig, states: dict[str, StreamState],
                       out_dir: Path, decisions: Path, store: CheckpointStore, until: str | None,
                       jobs: int, watch: ReplayWatch, keep: PerformanceOf | None) -> ReplaySummary:
    context = multiprocessing.get_context("fork")
    shared = _SharedProgress(jobs, context)
    parts = [out_dir / f".decisions.part{i}.csv" for i in range(jobs)]
    parent = os.getpid()
    pipes, processes = [], []
    try:
        for index in range(jobs):
            partition = StreamPartition(index, jobs)
            part_states = {stream: state for stream, state in states.items() if partition.owns(stream)}
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(
                target=_partition_main, name=f"replay-{index}", daemon=True,
                args=(sender, read, partition, config, part_states, parts[index], store, until,
                      shared, parent, keep))
            process.start()
            sender.close()
            pipes.append(receiver)
            processes.append(process)
        replies = _collect(pipes, shared, watch, bool(read.unread))
        failures = [r for r in replies if "error" in r]
        if failures:
            first = failures[0]
            raise (SequencerError if first.get("known") else RuntimeError)(first["error"])
        summary = ReplaySummary()
        for reply in replies:
            summary.add(reply["summary"])
        orders = [reply["order"] for reply in replies]
        if not (all(order is not None for order in orders)
                and _interleave_decisions(parts, orders, [reply["lengths"] for reply in replies], decisions)):
            _merge_decisions(parts, decisions)
        return summary
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        for part in parts:
            part.unlink(missing_ok=True)


def _partition_main(sender: Any, read: SourceRead, partition: StreamPartition, config: SequencerConfig,
                    states: dict[str, StreamState], decisions_path: Path, store: CheckpointStore,
                    until: str | None, shared: _SharedProgress, parent: int,
                    keep: PerformanceOf | None = None) -> None:
    _end_with_parent(parent)
    index = partition.index
    try:
        rows, rejects = read.rows, len(read.rejects)  # the parent's
        if read.unread:
            read.read_rest(partition, shared.read_by(index))
        events, order = read.events_in_order(partition)
        shared.found(index, len(events))
        summary, lengths = _fold_partition(events, config, states, decisions_path, store, until,
                                           shared.folded_by(index), keep, lengths=order is not None)
        summary.rows = read.rows - rows
        summary.rejects[:0] = read.rejects[rejects:]
        # A decision per event: the decisions are in the events' order, which
        # ``order`` tells the parent (``_interleave_decisions``), and ``lengths``
        # where each one's row lies in the part.
        in_order = summary.applied == len(events)
        sender.send({"summary": summary, "order": order if in_order else None, "lengths": lengths})
    except SequencerError as error:
        sender.send({"error": str(error), "known": True})
    except BaseException:  # noqa: BLE001 - the parent reports it; this process ends here
        sender.send({"error": f"replay partition {index} failed:\n{traceback.format_exc()}"})
    finally:
        sender.close()
    # Replied: end now, without freeing the day events and states object by
    # object (about 30 ms a partition, beside the parent's merge) for nobody.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _end_with_parent(parent: int) -> None:
    """Have the kernel kill this process when the parent dies (Linux), else watch for it.

    A partition whose parent is gone has nobody to merge its decisions, and
    would only spend the machine on work that is thrown away.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            _watch_parent(parent)
    else:
        _watch_parent(parent)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _collect(pipes: list, shared: _SharedProgress, watch: ReplayWatch, reading: bool) -> list[dict]:
    """Each partition's reply, reporting progress meanwhile (``reading``: the
    partitions read files, their total of events is not known yet).

    Only a partition holds the writing end of its pipe, so a partition that
    dies (killed, out of memory) shows as end-of-file.
    """
    replies: dict[int, dict] = {}
    waiting = {pipe: i for i, pipe in enumerate(pipes)}
    reported = read_reported = 0
    while waiting:
        for ready in wait(list(waiting), timeout=0.2):
            index = waiting.pop(ready)
            try:
                replies[index] = ready.recv()
            except EOFError:
                replies[index] = {"error": f"replay partition {index} ended without a reply"}
        if reading:
            read = sum(shared.bytes) // len(pipes)
            if watch.on_read is not None and read > read_reported:
                watch.on_read(read - read_reported)
                read_reported = read
            if all(shared.ready):
                reading = False
                if watch.on_total is not None:
                    watch.on_total(sum(shared.totals))
        done = sum(shared.done)
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
        with naming(target), target.open("w", newline="", encoding="utf-8") as out:
            out.write(headers[0])
            out.writelines(line for _, _, line in heapq.merge(*(_keyed(h) for h in handles)))
    finally:
        for handle in handles:
            handle.close()


def _interleave_decisions(parts: list[Path], orders: list[Any], lengths: list[list[int]], target: Path) -> bool:
    """The parts' decisions in (date, stream) order, by each partition's order
    keys of its decisions (``SourceRead.events_in_order``) and the lengths in
    bytes of their rows (``DecisionCsvWriter``): a stable sort of the keys
    orders the rows; each run of rows that lie one after another in a part
    too is written from the part, memory-mapped (``_merge_decisions`` without
    a key parsed per line, nor a line split, nor a copy of the parts in
    memory: 30 MB of fresh memory for the 120,000-event workload cost more
    than the rest). False, with nothing written, if a part's keys, lengths
    and size disagree (``_merge_decisions`` then)."""
    import numpy as np  # (the keys are numpy arrays: numpy is loaded)

    with ExitStack() as stack:
        maps = [stack.enter_context(_mapped(part)) for part in parts]
        views = [stack.enter_context(memoryview(mapped)) for mapped in maps]
        starts, ends, owners = [], [], []
        for index, (view, order, sizes) in enumerate(zip(views, orders, lengths)):
            header = bytes(view[:_HEADER_SEARCH]).find(b"\n") + 1  # (DECISION_FIELDS: never quoted)
            sizes = np.asarray(sizes, np.int64)
            row_ends = header + np.cumsum(sizes)
            if header == 0 or len(row_ends) != len(order) or (row_ends[-1] if len(row_ends) else header) != len(view):
                return False
            starts.append(row_ends - sizes)
            ends.append(row_ends)
            owners.append(np.full(len(order), index, np.int64))
        by_key = np.argsort(np.concatenate(orders), kind="stable")
        owner, start, end = (np.concatenate(values)[by_key] for values in (owners, starts, ends))
        follows = np.zeros(len(owner), bool)  # a row right after the previous one, in the same part
        follows[1:] = (owner[1:] == owner[:-1]) & (start[1:] == end[:-1])
        firsts = np.flatnonzero(~follows)
        lasts = np.append(firsts[1:], len(owner))[:len(firsts)] - 1  # (no rows: no runs)
        header = bytes(views[0][:_HEADER_SEARCH])
        with naming(target), target.open("wb", buffering=1 << 20) as out:
            out.write(header[:header.find(b"\n") + 1])
            out.writelines([views[part][a:b] for part, a, b in zip(
                owner[firsts].tolist(), start[firsts].tolist(), end[lasts].tolist())])
    return True


#: The header row of decisions.csv lies within its first bytes.
_HEADER_SEARCH = 4096


@contextmanager
def _mapped(path: Path) -> Iterator[Any]:
    """The file's bytes, memory-mapped read-only (an empty file: empty bytes)."""
    import mmap

    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            yield mapped


def _keyed(lines: Any) -> Any:
    for line in lines:
        stream, _, date, _ = line.split(",", 3)
        yield date, stream, line


def _reject_order(paths: list[Path]) -> Callable[[Reject], tuple[int, int, str, str]]:
    position: dict[str, int] = {}
    for i, path in enumerate(paths):
        position.setdefault(str(path), i)
    # Rejects of step 0 name no file: after the files' rejects, by date and stream,
    # so a split replay lists them in the order one process does.
    return lambda reject: (position.get(reject.source, len(paths)), reject.line or 0,
                           reject.date or "", reject.stream or "")
