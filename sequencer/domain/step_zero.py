"""SPEC 5 step 0 as one policy: what happens to an event at or before a stream's last date.

The worker (``processor.EventProcessor``) and the batch replay
(``replay.replay_events``) both ask ``step_zero``, so a day the worker
dead-letters is the day a resumed replay writes to rejects.csv, with the same
reason, word for word. What only the worker knows (Kafka offsets: a
redelivery, a replaced log) stays in the worker, before it asks.

    >>> from sequencer.domain import SequencerConfig, initial_state
    >>> from sequencer.domain.events import DayEvent
    >>> state = initial_state("ES1", SequencerConfig())._replace(last_processed_date="2025-01-06")
    >>> step_zero(state, DayEvent("ES1", "ES", "S1", "2025-01-03", {}), None).reason
    'out of order: ES1 2025-01-03 is before the last processed date 2025-01-06'
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import DayEvent
from .fold import Order, event_order
from .state import StreamState


@dataclass(frozen=True, slots=True)
class Skip:
    """Step 0 keeps an event out of the fold.

    ``reason`` None: a duplicate of the applied day, counted and skipped.
    Otherwise the event is a dead letter (a reject in a file replay) for that reason.
    """

    order: Order
    reason: str | None = None


def step_zero(state: StreamState, event: DayEvent, applied: DayEvent | None) -> Skip | None:
    """None when ``event`` is to be folded onto ``state``; else why not.

    ``applied`` is the event the state's last processed date came from, when
    known: a new event for that date with another payload is a correction that
    cannot be applied, and is reported rather than counted as a duplicate.
    """
    order = event_order(state, event.date)
    if order is Order.NEW:
        return None
    if order is Order.OUT_OF_ORDER:
        return Skip(order, f"out of order: {event.stream} {event.date} is before the last "
                           f"processed date {state.last_processed_date}")
    # An applied event of another date is not the one the state's date came from
    # (a last-events value older than the state's): nothing to compare with.
    if applied is not None and applied.date == event.date and applied != event:
        return Skip(order, f"duplicate: {event.stream} {event.date} was already applied "
                           "with a different payload")
    return Skip(order)
