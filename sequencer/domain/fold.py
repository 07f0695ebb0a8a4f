"""The fold (SPEC 5): ``apply_day(state, event, config) -> (state, decision)``.

Pure and deterministic: no clock, no I/O, no randomness. It is the hot path of
every replay and of the worker, so it builds each new value once and never
copies what did not change (tuples and the histories map are shared).
"""

from __future__ import annotations

import enum
import math
from bisect import bisect_right
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping

from .config import SequencerConfig
from .decision import Decision
from .events import SCORES, DayEvent
from .state import StreamState

#: Ladder rungs r_i = base * (1 + 0.5 i) for i = 0..14 (SPEC 5 step 4).
LADDER_RUNGS = 15


class Order(enum.Enum):
    """Where an event's date falls against the stream's last processed date (step 0)."""

    NEW = "new"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"


def event_order(state: StreamState, date: str) -> Order:
    last = state.last_processed_date
    if last is None or date > last:
        return Order.NEW
    return Order.DUPLICATE if date == last else Order.OUT_OF_ORDER


def _round(value: float) -> float:
    return round(value, 10)


def floor_to_increment(value: float, increment: float) -> float:
    return _round(math.floor(round(value / increment, 9)) * increment)


#: ``floor_to_increment`` of the medians the fold meets: a stream's median
#: is one of its recent peaks, so few (median, increment) pairs recur.
#: ``typed``: an increment of 1 gives an int where 1.0 gives a float. 0.0 and
#: -0.0 may share an entry: both floor to the same 0.0.
_floor_median = lru_cache(maxsize=4096, typed=True)(floor_to_increment)


def _stay_reason(result: str | None, traded: str) -> str:
    """Step 3's reason when the slot stays without a time change to weigh."""
    if result is None:
        return f"no outcome for {traded}: stay"
    return f"{result} at {traded}: stay"


#: A handful of (result, slot) pairs per session: the text built once each.
_stay_reason_of = lru_cache(maxsize=1024)(_stay_reason)

#: Builds a NamedTuple from a tuple of all its fields, in order, without the
#: keyword-handling ``__new__`` that the class generates (a Python-level call
#: per value; the fold builds two values per event).
_new_tuple = tuple.__new__

_FLOAT_TEXTS: dict[float, str] = {}
_FLOAT_TEXTS_MAX = 1 << 16


def _text(value: float) -> str:
    """``f"{value}"``, remembered for non-zero floats: the reason's float
    texts are most of its cost, and the same medians and targets recur.
    Only non-zero floats share the table: 10 and 10.0, 0.0 and -0.0 compare
    equal but print differently."""
    if type(value) is not float or not value:
        return f"{value}"
    text = _FLOAT_TEXTS.get(value)
    if text is None:
        text = repr(value)
        if len(_FLOAT_TEXTS) < _FLOAT_TEXTS_MAX:
            _FLOAT_TEXTS[value] = text
    return text


def ladder_rung(base: float, step: int) -> float:
    """r_step = base * (1 + 0.5 step) of SPEC 5 step 4."""
    return _round(base * (1 + 0.5 * step))


def target_cap(base: float, max_target_pct: float) -> float:
    """The highest target of SPEC 5 step 4: ``max_target_pct`` % of the base."""
    return _round(base * max_target_pct / 100)


def window_median(window, median_position: int) -> float:
    """m of SPEC 5 step 4: the ``median_position``-th smallest peak of a full window."""
    return sorted(window)[median_position - 1]


@lru_cache(maxsize=256)
def _target_rules(base: float, increment: float, max_target_pct: float) -> tuple[tuple[float, ...], float]:
    return tuple(ladder_rung(base, i) for i in range(LADDER_RUNGS)), target_cap(base, max_target_pct)


def apply_day(state: StreamState, event: DayEvent, config: SequencerConfig) -> tuple[StreamState, Decision | None]:
    """Fold one valid day event into the stream's state.

    Returns ``(state, None)`` unchanged when step 0 skips the event (its date
    is at or before ``last_processed_date``); ``event_order`` tells which case.
    """
    date = event.date
    last = state.last_processed_date
    if last is not None and date <= last:
        return state, None

    depth = config.depth
    outcomes = event.slots
    traded = state.current_time

    # Step 2: one score per slot with an outcome, histories capped at depth.
    histories: dict[str, tuple[int, ...]] = {}
    sums: dict[str, int] = {}
    for slot, history in state.time_slot_histories.items():
        outcome = outcomes.get(slot)
        if outcome is not None:
            # Capped by one slice: a slice of a whole tuple is that tuple, no copy.
            history = (history + (SCORES[outcome.result],))[-depth:]
        histories[slot] = history
        sums[slot] = sum(history)

    # Step 3: switch slots only after a Loss on the traded slot.
    traded_outcome = outcomes.get(traded)
    result = traded_outcome.result if traded_outcome is not None else None
    next_slot = traded
    time_change = False
    if result != "Loss":
        time_reason = _stay_reason_of(result, traded)
    elif not config.time_change:
        time_reason = f"Loss at {traded}: stay (time change disabled)"
    else:
        current_sum = sums[traded]
        best_slot = None
        best_sum = 0
        for slot, slot_sum in sums.items():  # session order: ties keep the earliest
            if slot != traded and (best_slot is None or slot_sum > best_sum):
                best_slot, best_sum = slot, slot_sum
        if best_slot is not None and best_sum > current_sum:
            next_slot = best_slot
            time_change = True
            time_reason = f"Loss at {traded} (sum {current_sum}): switch to {best_slot} (sum {best_sum})"
        elif best_slot is None:
            time_reason = f"Loss at {traded}: stay (no other slot)"
        else:
            time_reason = (
                f"Loss at {traded} (sum {current_sum}): stay, best other {best_slot} "
                f"(sum {best_sum}) is not higher"
            )

    # Step 4: targets from the traded slot's peak.
    spec = config.instruments[state.instrument]
    base = spec.base
    peak = traded_outcome.peak if traded_outcome is not None else None
    rolling_window = state.rolling_median_window
    ladder_window = state.median_ladder_window
    rolling_target = state.rolling_median_target
    ladder_target = state.median_ladder_target
    step = state.median_ladder_current_step
    days = state.median_ladder_days_at_level
    no_trade_next = state.no_trade_next
    median = None
    if peak is None:
        target_reason = f"no peak for {traded}: targets unchanged"
    else:
        same_windows = ladder_window is rolling_window or ladder_window == rolling_window
        rolling_window = rolling_window + (peak,)
        if len(rolling_window) > depth:
            rolling_window = rolling_window[-depth:]
        if same_windows:
            ladder_window = rolling_window
        else:
            ladder_window = ladder_window + (peak,)
            if len(ladder_window) > depth:
                ladder_window = ladder_window[-depth:]
        if len(rolling_window) < depth:
            rolling_target = base
            ladder_target = base
            days += 1
            no_trade_next = False
            target_reason = f"warm-up {len(rolling_window)}/{depth}: base {base}"
        else:
            rungs, cap = _target_rules(base, spec.increment, config.max_target_pct)
            position = config.median_position - 1
            median = sorted(rolling_window)[position]  # window_median, inlined: a call per event
            ladder_median = median if same_windows else sorted(ladder_window)[position]
            # min(max(floor, base), cap) as compares: the builtins cost a call
            # each, and the compares pick the same value as they would.
            rolling_target = _floor_median(median, spec.increment)
            if base > rolling_target:
                rolling_target = base
            if cap < rolling_target:
                rolling_target = cap
            # The highest rung at or below the median (rungs ascend); rung 0 at least.
            desired = bisect_right(rungs, ladder_median) - 1
            if desired < 0:
                desired = 0
            if desired > step:
                if days >= config.promotion_days:
                    step += 1
                    days = 1
                else:
                    days += 1
            elif desired < step:
                step = desired
                days = 1
            else:
                days += 1
            ladder_target = rungs[step]
            if cap < ladder_target:
                ladder_target = cap
            no_trade_next = config.no_trade_on_low_median and median < base
            # The float texts from the table (``_text``) without a call when
            # they are there: only non-zero floats are (10 and 10.0, 0.0 and
            # -0.0 compare equal but print differently).
            median_text = _FLOAT_TEXTS.get(median) if type(median) is float else None
            if median_text is None:
                median_text = _text(median)
            rolling_text = _FLOAT_TEXTS.get(rolling_target) if type(rolling_target) is float else None
            if rolling_text is None:
                rolling_text = _text(rolling_target)
            ladder_text = _FLOAT_TEXTS.get(ladder_target) if type(ladder_target) is float else None
            if ladder_text is None:
                ladder_text = _text(ladder_target)
            target_reason = (
                f"median {median_text} -> rolling {rolling_text}; ladder step {step} "
                f"(desired {desired}, day {days} at level) -> {ladder_text}"
            )
            if no_trade_next:
                target_reason += f"; median below base {base}: no trade next"

    # The trade of the day (SPEC 8.1): the slot chosen yesterday, taken
    # unless yesterday's state said no trade; a NoTrade result is a trade
    # that did not fill, its recorded profit counts like any other.
    if traded_outcome is not None and not state.no_trade_next:
        was_traded = True
        profit = traded_outcome.profit
        if type(profit) is not float:  # float() of a float is that float: skip the call
            profit = 0.0 if profit is None else float(profit)
    else:
        was_traded = False
        profit = 0.0
    profit_usd = round(profit * spec.point_value, 10)  # _round, inlined (a call per event)

    # Step 5.
    mode = config.target_mode
    if mode == "rolling_median":
        current_target = rolling_target
    elif mode == "median_ladder":
        current_target = ladder_target
    else:
        current_target = base

    new_state = _new_tuple(StreamState, (
        state.stream,
        state.instrument,
        state.session,
        state.config_id,
        date,
        state.events_applied + 1,
        rolling_window,
        ladder_window,
        MappingProxyType(histories),
        next_slot,
        current_target,
        rolling_target,
        ladder_target,
        step,
        days,
        no_trade_next,
        state.source_offsets,
    ))
    decision = _new_tuple(Decision, (
        state.stream,
        state.instrument,
        date,
        traded,
        result,
        peak,
        MappingProxyType(sums),
        time_change,
        next_slot,
        median,
        rolling_target,
        ladder_target,
        step,
        days,
        current_target,
        no_trade_next,
        time_reason,
        target_reason,
        was_traded,
        profit,
        profit_usd,
    ))
    return new_state, decision


def fold(state: StreamState, events, config: SequencerConfig) -> tuple[StreamState, list[Decision]]:
    """Apply events in order; skipped events produce no decision."""
    decisions = []
    for event in events:
        state, decision = apply_day(state, event, config)
        if decision is not None:
            decisions.append(decision)
    return state, decisions


def slot_sums(histories: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    return {slot: sum(h) for slot, h in histories.items()}
