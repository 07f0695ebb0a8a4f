"""Running a sweep: each fold group folded once, its rule groups evaluated, over processes.

The input is read and grouped once by the caller; the fold groups are dealt
to ``jobs`` forked processes, which inherit the events (nothing is pickled on
the way in) and send back only metric rows. Each group's decisions come from
``replay_events``, the loop ``sequencer replay`` runs, in the same (date,
stream) order its decisions.csv has, and go to ``evaluate``: the function
``sequencer report`` computes its metrics with.
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Sequence

from sequencer.domain import DayEvent, Decision, SequencerError
from sequencer.domain.metrics import DecisionColumns, report_of_columns
from sequencer.app.replay import replay_events
from sequencer.app.sweep.grid import SweepPoint
from sequencer.app.sweep.sharing import FoldGroup

#: ``evaluate(columns, point)`` -> the report of ``point`` (its config and
#: rules) over a fold's decisions as columns: ``{"all": {metric: value}, "streams": {stream: {...}}}``.
Evaluate = Callable[[DecisionColumns, SweepPoint], dict[str, Any]]


def report_of(columns: DecisionColumns, point: SweepPoint) -> dict[str, Any]:
    """The SPEC 8.3 metrics of ``sequencer report`` over one fold's decisions under ``point``'s rules.

    ``report_of_columns`` is the function the report itself ends in (its file
    reader's path); the columns are built once per fold and serve every rule
    group of it.
    """
    report = report_of_columns(columns, point.rules)
    return {"all": report.all.to_dict(),
            "streams": {name: metrics.to_dict() for name, metrics in report.streams.items()}}


#: How many events a process folds between two progress reports.
PROGRESS_EVERY = 2000


@dataclass(frozen=True)
class SweepRow:
    """One configuration's metrics: for all streams together, and per stream."""

    point: SweepPoint
    all: dict[str, Any]
    streams: dict[str, dict[str, Any]]


@dataclass
class SweepWatch:
    """What a progress display hears: the total of configurations x events, then increments."""

    on_total: Callable[[int], None] | None = None
    on_progress: Callable[[int], None] | None = None


@dataclass
class SweepTimes:
    """Where a sweep's time went, in seconds summed over its processes."""

    fold_s: float = 0.0
    evaluate_s: float = 0.0
    folds: int = 0
    evaluations: int = 0

    def add(self, other: "SweepTimes") -> None:
        self.fold_s += other.fold_s
        self.evaluate_s += other.evaluate_s
        self.folds += other.folds
        self.evaluations += other.evaluations


@dataclass
class SweepOutcome:
    rows: list[SweepRow]
    times: SweepTimes = field(default_factory=SweepTimes)


def run_sweep(events: Sequence[DayEvent], groups: Sequence[FoldGroup], evaluate: Evaluate = report_of,
              *, jobs: int = 1, watch: SweepWatch | None = None) -> SweepOutcome:
    """Every point of ``groups`` evaluated over ``events``; rows in grid order."""
    watch = watch or SweepWatch()
    points = sum(len(group.points) for group in groups)
    if watch.on_total is not None:
        watch.on_total(points * len(events))
    jobs = max(1, min(jobs, len(groups)))
    if jobs == 1 or "fork" not in multiprocessing.get_all_start_methods():
        outcome = _run_groups(events, groups, evaluate, _report_to(watch))
    else:
        outcome = _run_in_processes(events, groups, evaluate, jobs, watch)
    outcome.rows.sort(key=lambda row: row.point.index)
    return outcome


#: A fold (with its columns) costs about two reports (measured on the sample
#: data: 0.11 s a fold, 0.06 s a report); the unit of ``group_cost``.
FOLD_COST = 2


def group_cost(group: FoldGroup) -> int:
    """A fold group's work in reports: its fold, and one report per distinct rules."""
    return FOLD_COST + len(group.rule_groups)


def deal(groups: Sequence[FoldGroup], jobs: int) -> list[list[FoldGroup]]:
    """Groups dealt to ``jobs`` shares of about equal work, heaviest first (greedy)."""
    shares: list[list[FoldGroup]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    for group in sorted(groups, key=group_cost, reverse=True):
        lightest = loads.index(min(loads))
        shares[lightest].append(group)
        loads[lightest] += group_cost(group)
    return shares


def _run_groups(events: Sequence[DayEvent], groups: Sequence[FoldGroup], evaluate: Evaluate,
                report: Callable[[int], None]) -> SweepOutcome:
    outcome = SweepOutcome([])
    times = outcome.times
    for group in groups:
        weight = len(group.points)  # progress counts configurations x events
        started = time.perf_counter()
        decisions: list[Decision] = []
        replay_events(events, group.config, on_decision=decisions.append,
                      on_progress=lambda n, w=weight: report(n * w), progress_every=PROGRESS_EVERY)
        folded = time.perf_counter()
        columns = DecisionColumns.of(decisions)
        del decisions  # the columns hold what the report reads
        for rule_group in group.rule_groups:
            # Same decisions, same rules: one report serves every point of the rule group.
            result = evaluate(columns, rule_group[0])
            for point in rule_group:
                outcome.rows.append(SweepRow(point, result["all"], result["streams"]))
        times.fold_s += folded - started
        times.evaluate_s += time.perf_counter() - folded
        times.folds += 1
        times.evaluations += len(group.rule_groups)
    return outcome


def _report_to(watch: SweepWatch) -> Callable[[int], None]:
    def report(count: int) -> None:
        if watch.on_progress is not None:
            watch.on_progress(count)
    return report


def _run_in_processes(events: Sequence[DayEvent], groups: Sequence[FoldGroup], evaluate: Evaluate,
                      jobs: int, watch: SweepWatch) -> SweepOutcome:
    context = multiprocessing.get_context("fork")
    done = context.Array("q", jobs, lock=False)  # one writer per slot: no lock needed
    pipes, processes = [], []
    try:
        for index, share in enumerate(deal(groups, jobs)):
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=_share_main, name=f"sweep-{index}", daemon=True,
                                      args=(sender, events, share, evaluate, done, index))
            process.start()
            sender.close()
            pipes.append(receiver)
            processes.append(process)
        replies = _collect(pipes, done, watch)
    except BaseException:  # Ctrl-C, or the parent failed: the processes' work is lost anyway
        for process in processes:
            process.kill()
        raise
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    failures = [reply["error"] for reply in replies if "error" in reply]
    if failures:
        raise SequencerError(failures[0])
    # Points hold configs (mapping proxies do not pickle): rows came back by point index.
    points = {point.index: point for group in groups for point in group.points}
    outcome = SweepOutcome([])
    for reply in replies:
        outcome.rows.extend(SweepRow(points[index], all_metrics, streams)
                            for index, all_metrics, streams in reply["rows"])
        outcome.times.add(reply["times"])
    return outcome


def _share_main(sender: Any, events: Sequence[DayEvent], share: list[FoldGroup], evaluate: Evaluate,
                done: Any, index: int) -> None:
    def report(count: int) -> None:
        done[index] += count

    try:
        outcome = _run_groups(events, share, evaluate, report)
        sender.send({"rows": [(row.point.index, row.all, row.streams) for row in outcome.rows],
                     "times": outcome.times})
    except SequencerError as error:
        sender.send({"error": str(error)})
    except BaseException:  # noqa: BLE001 - the parent reports it; this process ends here
        sender.send({"error": f"sweep process {index} failed:\n{traceback.format_exc()}"})
    finally:
        sender.close()


def _collect(pipes: list, done: Any, watch: SweepWatch) -> list[dict]:
    """Each process's reply, reporting progress meanwhile; a process that dies shows as EOF."""
    replies: dict[int, dict] = {}
    waiting = {pipe: i for i, pipe in enumerate(pipes)}
    reported = 0
    while waiting:
        for ready in wait(list(waiting), timeout=0.2):
            index = waiting.pop(ready)
            try:
                replies[index] = ready.recv()
            except EOFError:
                replies[index] = {"error": f"sweep process {index} ended without a reply"}
        total = sum(done)
        if watch.on_progress is not None and total > reported:
            watch.on_progress(total - reported)
            reported = total
    return [replies[i] for i in range(len(pipes))]
