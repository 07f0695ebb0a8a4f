"""Batch replay: fold day events into per-stream states, in order.

The application layer between sources and sinks: it looks states up, calls
the pure fold, and hands each decision to a sink. It reads no files and no
clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from .domain import DayEvent, Decision, Order, SequencerConfig, StreamState, apply_day, event_order, initial_state


@dataclass
class ReplayResult:
    """Final states and what happened to each event."""

    states: dict[str, StreamState]
    applied: int = 0
    already_applied: int = 0  # at or before a resumed stream's last_processed_date
    after_until: int = 0
    skipped_by_stream: dict[str, int] = field(default_factory=dict)


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
    stream's ``last_processed_date`` is counted as already applied (resume).
    """
    states = dict(states or {})
    result = ReplayResult(states)
    seen = 0
    for event in events:
        seen += 1
        if on_progress is not None and seen % progress_every == 0:
            on_progress(progress_every)
        if until is not None and event.date > until:
            result.after_until += 1
            continue
        state = states.get(event.stream)
        if state is None:
            state = initial_state(event.stream, config)
        new_state, decision = apply_day(state, event, config)
        if decision is None:
            result.already_applied += 1
            result.skipped_by_stream[event.stream] = result.skipped_by_stream.get(event.stream, 0) + 1
            continue
        states[event.stream] = new_state
        result.applied += 1
        if on_decision is not None:
            on_decision(decision)
    if on_progress is not None and seen % progress_every:
        on_progress(seen % progress_every)
    return result


def skip_reason(state: StreamState, event: DayEvent) -> str | None:
    """Why step 0 would skip ``event``, or None when it applies."""
    order = event_order(state, event.date)
    if order is Order.NEW:
        return None
    if order is Order.DUPLICATE:
        return f"duplicate: {event.stream} {event.date} is the last processed date"
    return f"out of order: {event.stream} {event.date} is before the last processed date {state.last_processed_date}"
