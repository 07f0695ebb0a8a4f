"""Batch replay: fold day events into per-stream states, in order.

The application layer between sources and sinks: it looks states up, calls
the pure fold, and hands each decision to a sink. It reads no files and no
clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from sequencer.domain import DayEvent, Decision, SequencerConfig, StreamState, apply_day, initial_state
from sequencer.domain.step_zero import step_zero


@dataclass
class ReplayResult:
    """Final states and what happened to each event."""

    states: dict[str, StreamState]
    applied: int = 0
    already_applied: int = 0  # duplicates of a stream's last processed day (step 0), skipped
    after_until: int = 0
    #: Events step 0 refused, with the reason the worker's dead letter gives
    #: (out of order; a different payload for the last applied day).
    refused: list[tuple[DayEvent, str]] = field(default_factory=list)


def replay_events(
    events: Iterable[DayEvent],
    config: SequencerConfig,
    states: dict[str, StreamState] | None = None,
    *,
    until: str | None = None,
    on_decision: Callable[[Decision], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    progress_every: int = 2000,
) -> ReplayResult:
    """Apply ``events`` (already in date order per stream) on top of ``states``.

    Events after ``until`` (ISO date) are not applied. An event at or before a
    stream's ``last_processed_date`` (a resumed state) goes through the worker's
    step-0 policy (``domain.step_zero``): a duplicate of the last applied day is
    counted as already applied; an earlier day, or another payload for a day
    applied in this run, is refused with the worker's dead-letter reason.
    """
    states = dict(states or {})
    result = ReplayResult(states)
    applied_events: dict[str, DayEvent] = {}  # the last event applied per stream, this run
    seen = 0
    for event in events:
        seen += 1
        if on_progress is not None and seen % progress_every == 0:
            on_progress(progress_every)
        if until is not None and event.date > until:
            result.after_until += 1
            continue
        stream = event.stream
        state = states.get(stream)
        if state is None:
            state = initial_state(stream, config)
        last = state.last_processed_date
        if last is not None and event.date <= last:
            skip = step_zero(state, event, applied_events.get(stream) if event.date == last else None)
            if skip is not None:
                if skip.reason is None:
                    result.already_applied += 1
                else:
                    result.refused.append((event, skip.reason))
                continue
        new_state, decision = apply_day(state, event, config)
        states[stream] = new_state
        applied_events[stream] = event
        result.applied += 1
        if on_decision is not None:
            on_decision(decision)
    if on_progress is not None and seen % progress_every:
        on_progress(seen % progress_every)
    return result
