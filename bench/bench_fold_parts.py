"""Where the per-event time goes: decode, validate, fold, encode, state codec (issue 18).

    python bench/bench_fold_parts.py [--days 10000] [--repeat 5] [--profile]

Times each step of the worker's per-event path alone, over the same
synthetic events as every other bench (``bench/synthetic.py``), in
microseconds per event (best and median of ``--repeat`` passes; the best is
the least disturbed by the other processes on a shared machine):

- ``msgpack.unpackb`` alone, then ``decode_payload`` (size checks + unpackb),
  then ``parse_day_event`` (SPEC 3 validation into a ``DayEvent``);
- ``apply_day`` (each stream folded in date order, as the worker does);
- ``encode_decision``, split into ``Decision.to_dict`` and ``msgpack.packb``;
- the state codec: ``state_to_dict`` and ``state_from_dict``.

Beside them, a few what-if variants of the hot steps that produce the *same
bytes / values* (checked here), to size trims before anyone changes
``sequencer/``: building the decision map with ``zip`` over the fields, a
reused ``msgpack.Packer``, and the share of ``apply_day`` spent formatting the
two reason strings. ``--profile`` adds a cProfile of ``apply_day`` +
``encode_decision`` and one of ``state_from_dict`` (top functions by own
time).

The code under ``sequencer/`` is only called, never changed.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import statistics
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def load_events(days: int):
    from synthetic import write_synthetic

    from sequencer.domain import SequencerConfig
    from sequencer.adapters.files.sources import read_day_events

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "synthetic.csv"
        write_synthetic(path, days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
        return read_day_events([path], SequencerConfig()).events


def per_event_us(run, count: int, repeat: int) -> tuple[float, float]:
    """(best, median) microseconds per event of ``run()``, which handles ``count`` events."""
    gc.collect()
    times = timeit.repeat(run, number=1, repeat=repeat)
    return min(times) / count * 1e6, statistics.median(times) / count * 1e6


def reasons_only(decisions):
    """Format the two reason strings of every decision as ``apply_day`` does (a stand-in of its f-strings)."""
    for d in decisions:
        f"Loss at {d.traded_slot} (sum {d.days_at_level}): switch to {d.next_slot} (sum {d.ladder_step})"
        f"median {d.rolling_median} -> rolling {d.rolling_median_target}; ladder step {d.ladder_step} " \
            f"(desired {d.ladder_step}, day {d.days_at_level} at level) -> {d.median_ladder_target}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="also cProfile apply_day + encode_decision")
    args = parser.parse_args()

    import msgpack

    from sequencer.app.codecs import decode_payload, encode_decision, encode_event
    from sequencer.domain import (
        DECISION_FIELDS,
        SequencerConfig,
        apply_day,
        initial_state,
        parse_day_event,
        state_from_dict,
        state_to_dict,
    )

    config = SequencerConfig()
    events = load_events(args.days)
    n = len(events)
    payloads = [encode_event(e) for e in events]
    docs = [msgpack.unpackb(p, raw=False) for p in payloads]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"msgpack {msgpack.version}; {n:,} day events; microseconds per event, best / median of {args.repeat}")

    def fold_all():
        states = {}
        out = []
        for event in events:
            state = states.get(event.stream) or initial_state(event.stream, config)
            state, decision = apply_day(state, event, config)
            states[event.stream] = state
            out.append(decision)
        return states, out

    final_states, decisions = fold_all()
    assert all(d is not None for d in decisions), "synthetic events are all new: each gives a decision"
    # Every state the worker would write once per batch: take one per decision's stream position.
    state_samples = list(final_states.values()) * (n // len(final_states))
    state_docs = [state_to_dict(s) for s in state_samples]

    packer = msgpack.Packer(use_bin_type=True)

    def to_dict_zip(d):
        doc = dict(zip(DECISION_FIELDS, d))
        doc["slot_sums"] = dict(d.slot_sums)
        return doc

    for d in decisions[:1000]:   # the what-ifs must give the same bytes
        assert packer.pack(to_dict_zip(d)) == encode_decision(d)

    rows = [
        ("msgpack.unpackb (event bytes -> map)", lambda: [msgpack.unpackb(p, raw=False) for p in payloads]),
        ("decode_payload (size checks + unpackb)", lambda: [decode_payload(p) for p in payloads]),
        ("parse_day_event (SPEC 3 validation -> DayEvent)", lambda: [parse_day_event(d, config) for d in docs]),
        ("apply_day (the fold)", fold_all),
        ("  of which: the two reason f-strings (stand-in)", lambda: reasons_only(decisions)),
        ("encode_decision", lambda: [encode_decision(d) for d in decisions]),
        ("  Decision.to_dict", lambda: [d.to_dict() for d in decisions]),
        ("  msgpack.packb of that map", None),
        ("  what-if: dict(zip(fields, decision)) + reused Packer (same bytes)",
         lambda: [packer.pack(to_dict_zip(d)) for d in decisions]),
        ("state_to_dict (one state)", lambda: [state_to_dict(s) for s in state_samples]),
        ("state_from_dict (one state)", lambda: [state_from_dict(d, config) for d in state_docs]),
    ]
    decision_docs = [d.to_dict() for d in decisions]
    results = {}
    for label, run in rows:
        if run is None:
            run = lambda: [msgpack.packb(doc, use_bin_type=True) for doc in decision_docs]  # noqa: E731
        count = len(state_samples) if "state" in label.split()[0] else n
        best, median = per_event_us(run, count, args.repeat)
        results[label] = best
        print(f"{label:<70} {best:6.2f} / {median:6.2f} us")
    fold_us = results["apply_day (the fold)"]
    print(f"fold alone: {1e6 / fold_us:,.0f} events/s on one core (best pass)")

    if args.profile:
        def fold_and_encode():
            for d in fold_all()[1]:
                encode_decision(d)

        print("cProfile: apply_day + encode_decision over every event")
        print(profile(fold_and_encode))
        print("cProfile: state_from_dict over as many state documents")
        print(profile(lambda: [state_from_dict(d, config) for d in state_docs]))


def profile(run, top: int = 14) -> str:
    """The ``top`` functions of ``run()`` by own time, as cProfile prints them."""
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


if __name__ == "__main__":
    main()
