"""SPEC 6: the equivalences, as hypothesis properties over random valid event sequences.

Sequences cover a few streams of both sessions, every accepted spelling of every
result, missing slots, peaks absent / null / present, random gaps between dates,
random interleaving of streams, and random configs.
"""

from __future__ import annotations

import datetime as dt
import json
from types import MappingProxyType
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.domain import (
    SequencerConfig,
    SlotOutcome,
    apply_day,
    initial_state,
    parse_day_event,
    state_from_dict,
    state_to_dict,
)
from sequencer.app.replay import replay_events

SPELLINGS = ["Win", "win", "WIN", "Loss", "loss", "LOSS", "BE", "be", "BREAK_EVEN", "breakeven",
             "BREAKEVEN", "NoTrade", "NO_TRADE", "NO TRADE", "NOTRADE", "no trade", "TIME", "time"]
STREAMS = ["ES1", "NQ2", "CL1", "NG2"]

configs = st.builds(
    lambda depth, pos, promo, pct, mode, tc, nt: SequencerConfig(
        depth=depth, median_position=min(pos, depth), promotion_days=promo, max_target_pct=pct,
        target_mode=mode, time_change=tc, no_trade_on_low_median=nt),
    st.integers(1, 7), st.integers(1, 7), st.integers(0, 3), st.sampled_from([100, 150, 400]),
    st.sampled_from(["base", "rolling_median", "median_ladder"]), st.booleans(), st.booleans(),
)

# Peaks around each instrument's base so targets move: scaled by the base below.
peak_factors = st.one_of(
    st.just(None),  # key absent
    st.just("null"),  # explicit null
    st.floats(min_value=0, max_value=6, allow_nan=False),
    st.integers(0, 16).map(lambda n: n / 4),
    st.sampled_from([0.3, 0.9, 1.0, 1.5, 2.2]),
)


@st.composite
def sequences(draw, max_per_stream: int = 14):
    """(config, events): valid day events, per-stream dates increasing, streams interleaved."""
    config = draw(configs)
    streams = draw(st.lists(st.sampled_from(STREAMS), min_size=1, max_size=3, unique=True))
    per_stream: dict[str, list] = {}
    for stream in streams:
        state = initial_state(stream, config)
        base = config.instruments[state.instrument].base
        slots = config.sessions[state.session]
        date = dt.date(2025, 1, 1) + dt.timedelta(days=draw(st.integers(0, 3)))
        events = []
        for _ in range(draw(st.integers(0, max_per_stream))):
            chosen = draw(st.one_of(  # often every slot, so the traded one has data
                st.just(slots), st.lists(st.sampled_from(slots), unique=True, max_size=len(slots))))
            doc_slots = {}
            for slot in chosen:
                outcome = {"result": draw(st.sampled_from(SPELLINGS))}
                factor = draw(peak_factors)
                if factor == "null":
                    outcome["peak"] = None
                elif factor is not None:
                    outcome["peak"] = factor * base
                doc_slots[slot] = outcome
            doc = {"stream": stream, "date": date.isoformat(), "slots": doc_slots}
            events.append(parse_day_event(doc, config))
            date += dt.timedelta(days=draw(st.integers(1, 3)))
        per_stream[stream] = events
    # interleave, keeping each stream's order (as a partitioned log would)
    order = draw(st.permutations([s for s, evs in per_stream.items() for _ in evs]))
    cursors = {s: 0 for s in per_stream}
    merged = []
    for stream in order:
        merged.append(per_stream[stream][cursors[stream]])
        cursors[stream] += 1
    return config, merged


def plain_fold(events, config, states=None):
    """The definition: a loop of apply_day over a dict of states."""
    states = dict(states or {})
    decisions = []
    for event in events:
        state = states.get(event.stream) or initial_state(event.stream, config)
        state, decision = apply_day(state, event, config)
        states[event.stream] = state
        if decision is not None:
            decisions.append(decision)
    return states, decisions


def through_json(states, config):
    return {s: state_from_dict(json.loads(json.dumps(state_to_dict(st))), config) for s, st in states.items()}


def through_store(states, config, folder: Path):
    """Save every state as a checkpoint file and load them back (a fresh folder per call)."""
    store = CheckpointStore(folder, config)
    assert store.files() == []
    store.save_all(states.values())
    loaded, refused = store.load_all()
    assert refused == []
    return {s: cp.state for s, cp in loaded.items()}


@settings(max_examples=200, deadline=None)
@given(sequences(), st.data())
def test_checkpoint_then_tail_equals_full_fold(tmp_path_factory, case, data):
    config, events = case
    split = data.draw(st.integers(0, len(events)), label="split")
    full_states, full_decisions = plain_fold(events, config)
    head_states, head_decisions = plain_fold(events[:split], config)
    for restored in (through_json(head_states, config),
                     through_store(head_states, config, tmp_path_factory.mktemp("cp"))):
        assert restored == head_states
        tail_states, tail_decisions = plain_fold(events[split:], config, restored)
        assert tail_states == full_states
        assert head_decisions + tail_decisions == full_decisions
        assert tail_decisions == full_decisions[len(head_decisions):]


@settings(max_examples=200, deadline=None)
@given(sequences())
def test_applying_any_event_twice_changes_nothing(case):
    config, events = case
    states = {}
    for event in events:
        state = states.get(event.stream) or initial_state(event.stream, config)
        state, decision = apply_day(state, event, config)
        assert decision is not None
        again, repeat = apply_day(state, event, config)
        assert repeat is None and again == state
        states[event.stream] = state
    assert states == plain_fold(events, config)[0]


@settings(max_examples=200, deadline=None)
@given(sequences(), st.data())
def test_redelivered_earlier_events_change_nothing(case, data):
    # Any earlier event delivered again at any later point (a duplicate or an
    # out-of-order copy) is skipped: same final states, same decisions.
    config, events = case
    full_states, full_decisions = plain_fold(events, config)
    noisy = list(events)
    for _ in range(data.draw(st.integers(0, 6), label="copies")):
        if not events:
            break
        source = data.draw(st.integers(0, len(events) - 1), label="source")
        position = noisy.index(events[source]) + 1
        target = data.draw(st.integers(position, len(noisy)), label="target")
        noisy.insert(target, events[source])
    states, decisions = plain_fold(noisy, config)
    assert states == full_states and decisions == full_decisions


@settings(max_examples=150, deadline=None)
@given(sequences(), st.data())
def test_crash_and_redelivery_of_a_prefix_changes_nothing(tmp_path_factory, case, data):
    # Run until a crash at event `crash`; the last checkpoint was taken after
    # event `checkpoint` <= crash. On restart the source re-delivers from an
    # offset `redeliver` <= checkpoint (at-least-once). The states and decisions
    # after the restart are those of an uninterrupted run.
    config, events = case
    n = len(events)
    crash = data.draw(st.integers(0, n), label="crash")
    checkpoint = data.draw(st.integers(0, crash), label="checkpoint")
    redeliver = data.draw(st.integers(0, checkpoint), label="redeliver")
    full_states, full_decisions = plain_fold(events, config)

    saved, before_checkpoint = plain_fold(events[:checkpoint], config)
    saved = through_store(saved, config, tmp_path_factory.mktemp("crash"))
    # the work between checkpoint and crash is lost with the process
    _, lost = plain_fold(events[checkpoint:crash], config, saved)
    assert lost == full_decisions[len(before_checkpoint):len(before_checkpoint) + len(lost)]

    states, after_restart = plain_fold(events[redeliver:], config, saved)
    assert states == full_states
    assert before_checkpoint + after_restart == full_decisions
    # and once everything is done, delivering any prefix again changes nothing
    prefix = data.draw(st.integers(0, n), label="prefix")
    again, extra = plain_fold(events[:prefix], config, states)
    assert again == states and extra == []


@settings(max_examples=200, deadline=None)
@given(sequences(), st.data())
def test_batch_replay_equals_a_plain_apply_day_loop(case, data):
    config, events = case
    states, decisions = plain_fold(events, config)
    emitted = []
    result = replay_events(events, config, on_decision=emitted.append)
    assert result.states == states and emitted == decisions
    assert result.applied == len(events) and result.already_applied == 0

    # --until: exactly the events up to and including that date
    if events:
        until = data.draw(st.sampled_from(sorted({e.date for e in events})), label="until")
        kept = [e for e in events if e.date <= until]
        emitted = []
        result = replay_events(events, config, until=until, on_decision=emitted.append)
        expected_states, expected_decisions = plain_fold(kept, config)
        assert result.states == expected_states and emitted == expected_decisions
        assert result.after_until == len(events) - len(kept)

    # resuming from a checkpoint and replaying everything again skips what was done
    split = data.draw(st.integers(0, len(events)), label="split")
    head = replay_events(events[:split], config)
    emitted = []
    resumed = replay_events(events, config, through_json(head.states, config), on_decision=emitted.append)
    assert resumed.states == states
    assert emitted == decisions[head.applied:]
    # Step 0 sees the head again, as the worker would: each stream's last day is a
    # duplicate (counted), every earlier day is out of order (refused, with a reason).
    last = {e.stream: e.date for e in events[:split]}
    assert resumed.already_applied == len(last)
    assert resumed.refused == [
        (e, f"out of order: {e.stream} {e.date} is before the last processed date {last[e.stream]}")
        for e in events[:split] if e.date != last[e.stream]]
    # ... with the worker's reasons, word for word (one policy: domain.step_zero)
    worker = worker_dead_letters(events, config, through_json(head.states, config))
    assert worker == [(e.stream, reason) for e, reason in resumed.refused]


def worker_dead_letters(events, config, states):
    """(stream, reason) of each dead letter the worker's processor gives ``events`` on ``states``."""
    from sequencer.app.codecs import encode_event
    from sequencer.app.processor import EventProcessor
    from sequencer.app.records import SourceRecord

    processor = EventProcessor(config, states.get)
    outcome = processor.process(SourceRecord("ev", 0, i, e.stream.encode(), encode_event(e))
                                for i, e in enumerate(events))
    return [(letter.stream, letter.reason) for letter in outcome.dead_letters]


@settings(max_examples=100, deadline=None)
@given(sequences(), st.data())
def test_a_corrected_day_is_refused_by_replay_as_by_the_worker(case, data):
    # The same (stream, date) again with another payload: a correction of a day
    # already applied. Neither path may apply it or skip it without a word.
    config, events = case
    assume(events)
    # a stream's last event: right after it, its day is the stream's last processed date
    original = data.draw(st.sampled_from([e for i, e in enumerate(events)
                                          if all(later.stream != e.stream for later in events[i + 1:])]),
                         label="original")
    changed = {slot: outcome._replace(result="Loss" if outcome.result != "Loss" else "Win")
               for slot, outcome in original.slots.items()} or {
        config.sessions[original.session][0]: SlotOutcome("Win")}
    corrected = original._replace(slots=MappingProxyType(changed))
    assume(corrected != original)
    at = events.index(original) + 1
    sent = events[:at] + [corrected] + events[at:]
    result = replay_events(sent, config)
    reason = f"duplicate: {original.stream} {original.date} was already applied with a different payload"
    assert result.refused == [(corrected, reason)]
    assert result.states == plain_fold(events, config)[0]
    assert worker_dead_letters(sent, config, {}) == [(original.stream, reason)]


def process_log(events, config, states, *, start=0, partition=0):
    """The worker's processor over ``events`` as records of one partition from offset ``start``."""
    from sequencer.app.codecs import encode_event
    from sequencer.app.processor import EventProcessor
    from sequencer.app.records import SourceRecord

    states = dict(states)
    processor = EventProcessor(config, states.get)
    records = [SourceRecord("ev", partition, start + i, e.stream.encode(), encode_event(e))
               for i, e in enumerate(events)]
    outcome = processor.process(records)
    states.update(outcome.states)
    return states, outcome.decisions


def without_offsets(states):
    return {s: state._replace(source_offsets={}) for s, state in states.items()}


@settings(max_examples=150, deadline=None)
@given(sequences(), st.data())
def test_a_replaced_log_goes_on_from_the_states_dates(case, data):
    # The states came from log A; the topic is recreated (or an in-memory
    # broker restarted) and log B starts again at offset 0 with the days
    # after the split, maybe after a republished stretch of old days. Every
    # new day is folded once, none is taken for a redelivery.
    config, events = case
    split = data.draw(st.integers(0, len(events)), label="split")
    again = data.draw(st.integers(0, split), label="republished")
    full_states, full_decisions = plain_fold(events, config)
    states, _ = process_log(events[:split], config, {})
    states, decisions = process_log(events[split - again:split] + events[split:], config, states)
    assert without_offsets(states) == without_offsets(full_states)
    assert decisions == full_decisions[len(plain_fold(events[:split], config)[1]):]
    # and log B's redeliveries are skipped as before
    redelivered = data.draw(st.integers(0, len(events) - split + again), label="redelivered")
    replayed, extra = process_log((events[split - again:split] + events[split:])[:redelivered], config, states)
    assert replayed == states and extra == []
