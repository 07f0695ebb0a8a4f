"""Per-record codecs: the typed (msgspec) codecs against the ones they replaced, same run.

Over the same records of the synthetic workload, best of ``--repeat`` passes,
before and after alternating in one process, so each ratio is a same-run figure.

Day events (msgpack as the publisher writes them, and JSON):

- before: ``tests/support/frozen_event_validation.py`` (``decode_payload`` +
  ``parse_day_event``, the code of main at 0b94c4e);
- after: ``codecs.EventDecoder.decode`` (msgspec structs + ``EventRules``);
- the worker's side: ``EventProcessor.process`` of the same records (decode,
  step 0, fold, offsets), before and after (the old decoder swapped in).

Decisions, dead letters, stream states (``--records``; states are those the fold
passes through, sampled at every stage of their windows), the old code written
out here or taken from ``tests/support/frozen_state_validation.py``:

- decisions: ``Packer.pack(to_dict())`` vs ``encode_decision``;
  ``Decision.from_dict(unpackb())`` vs ``decode_decision``;
- dead letters: ``msgpack.packb`` of the map vs ``encode_dead_letter``; ``unpackb`` vs
  ``decode_dead_letter``;
- states: ``state_from_dict`` (dict -> state) frozen vs now; the table value's
  ``json.loads`` + ``state_from_dict`` vs ``decode_state``; ``encode_state``
  (json.dumps, kept) vs what msgspec would write, and how many of those bytes differ;
- checkpoints: loading ``--files`` files (the old ``read_text`` + ``json.loads`` +
  ``load_state_document`` vs ``CheckpointStore.load_file``), and how many files
  msgspec's ``encode`` + ``format(indent=2)`` would write differently.

    python bench/bench_typed_codecs.py --events 120000 --records 20000 --files 1000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def best(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--records", type=int, default=20_000, help="decisions, dead letters, states")
    parser.add_argument("--files", type=int, default=1000, help="checkpoint files loaded")
    parser.add_argument("--skip-events", action="store_true", help="only the decision, letter and state rows")
    args = parser.parse_args()

    import msgspec

    from sequencer.app.codecs import EventDecoder, encode_event
    from sequencer.domain import SequencerConfig
    from sequencer.app.processor import EventProcessor
    from sequencer.app.records import SourceRecord
    from sequencer.adapters.files.sources import read_day_events
    from synthetic import write_synthetic
    from tests.support import frozen_event_validation as frozen

    config = SequencerConfig()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "synthetic.csv"
        write_synthetic(path, max(1, args.events // 12), ["ES", "NQ", "YM", "CL", "GC", "NG"])
        events = read_day_events([path], config).events[:args.events]
    packed = [encode_event(e) for e in events]
    as_json = [json.dumps(e.to_dict()).encode() for e in events]
    decoder = EventDecoder(config)
    for data in packed[:1000] + as_json[:1000]:  # same events out of both
        old = frozen.decode_event(data, config)
        new = decoder.decode(data)
        assert (old.stream, old.date, tuple(old.slots.items())) == (new.stream, new.date, tuple(new.slots.items()))

    def processor_run(old: bool):
        processor = EventProcessor(config, lambda s: None, latest_date=lambda: None)
        if old:
            processor._decoder = type("Old", (), {"decode": staticmethod(
                lambda data, latest: frozen.parse_day_event(frozen.decode_payload(data), config, latest))})
        records = [SourceRecord("events", 0, i, e.stream.encode(), v) for i, (e, v) in enumerate(zip(events, packed))]
        return lambda: processor.process(records)

    rows = []
    if not args.skip_events:
        for name, before, after in [
            ("msgpack event: decode + validate", lambda: [frozen.decode_event(d, config) for d in packed],
             lambda: [decoder.decode(d) for d in packed]),
            ("JSON event: decode + validate", lambda: [frozen.decode_event(d, config) for d in as_json],
             lambda: [decoder.decode(d) for d in as_json]),
        ]:
            rows.append((name, len(events), *alternate(before, after, args.repeat)))
        rows.append(("worker: EventProcessor.process per record", len(events),
                     *alternate(lambda: processor_run(True), lambda: processor_run(False), args.repeat,
                               built=True)))
    rows += record_rows(events, packed, config, args)
    print(f"{len(events)} events, best of {2 * args.repeat} passes; {platform.machine()}, Python "
          f"{platform.python_version()}, msgspec {msgspec.__version__}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'step':58} {'records':>8} {'before µs':>10} {'after µs':>10} {'ratio':>7}")
    for name, count, b, a in rows:
        if isinstance(b, str):  # a note, not a timing
            print(f"{name:58} {count:8} {b}")
            continue
        print(f"{name:58} {count:8} {b / count * 1e6:10.2f} {a / count * 1e6:10.2f} {a / b:7.3f}")
    return 0


def alternate(before, after, repeat: int, built: bool = False) -> tuple[float, float]:
    """Best times of ``before`` and ``after``, two rounds alternating. ``built``: each is a
    factory of the run (a fresh processor per round)."""
    b = a = float("inf")
    for _ in range(2):
        b = min(b, best(before() if built else before, repeat))
        a = min(a, best(after() if built else after, repeat))
    return b, a


def record_rows(events, packed, config, args) -> list:
    """Decisions, dead letters, states and checkpoint files: before/after rows."""
    import hashlib
    from itertools import islice

    import msgpack
    import msgspec

    from sequencer.adapters.files.checkpoints import CheckpointStore
    from sequencer.app.codecs import (decode_dead_letter, decode_decision, decode_state, encode_dead_letter,
                                      encode_decision, encode_state)
    from sequencer.app.records import DeadLetter, SourceRecord
    from sequencer.domain import Decision, apply_day, initial_state, state_from_dict, state_to_dict
    from tests.support import frozen_state_validation as frozen_state

    states, decisions, snapshots = {}, [], []
    for i, event in enumerate(events):
        state = states.get(event.stream) or initial_state(event.stream, config)
        state, decision = apply_day(state, event, config)
        states[event.stream] = state
        if decision is not None:
            decisions.append(decision)
        if i % 7 == 0:  # states at every stage: warm-up windows, full ones, offsets
            snapshots.append(state.with_source_offsets({"events:0": i}) if i % 2 else state)
    decisions = list(islice(decisions, args.records))
    snapshots = list(islice(snapshots, args.records))
    old_packer = msgpack.Packer(use_bin_type=True)
    decision_bytes = [encode_decision(d) for d in decisions]
    assert decision_bytes == [old_packer.pack(d.to_dict()) for d in decisions], "same bytes"
    assert [decode_decision(b) for b in decision_bytes] == decisions

    letters = [DeadLetter(SourceRecord("events", 0, i, e.stream.encode(), v), "future date", e.stream)
               for i, (e, v) in enumerate(islice(zip(events, packed), args.records))]

    def old_letter(letter):
        record = letter.record

        def cut(name, data, most):
            return {name: data[:most], f"{name}_length": len(data),
                    f"{name}_sha256": hashlib.sha256(data).hexdigest(), f"{name}_truncated": len(data) > most}
        return msgpack.packb({"reason": letter.reason, "stream": letter.stream, "source_topic": record.topic,
                              "source_partition": record.partition, "source_offset": record.offset,
                              **cut("key", record.key, 1024), **cut("value", record.value, 16 * 1024)},
                             use_bin_type=True)
    letter_bytes = [encode_dead_letter(x) for x in letters]
    assert letter_bytes == [old_letter(x) for x in letters], "same bytes"

    state_docs = [state_to_dict(s) for s in snapshots]
    table_values = [encode_state(s) for s in snapshots]
    assert [decode_state(v, config) for v in table_values] == snapshots
    assert [frozen_state.decode_state(v, config) for v in table_values] == snapshots
    msgspec_json = msgspec.json.Encoder()
    differ = sum(msgspec_json.encode(d) != json.dumps(d, separators=(",", ":"), allow_nan=False).encode()
                 for d in state_docs)

    rows = [
        ("decision: encode", len(decisions), *alternate(
            lambda: [old_packer.pack(d.to_dict()) for d in decisions],
            lambda: [encode_decision(d) for d in decisions], args.repeat)),
        ("decision: decode", len(decisions), *alternate(
            lambda: [Decision.from_dict(msgpack.unpackb(b, raw=False)) for b in decision_bytes],
            lambda: [decode_decision(b) for b in decision_bytes], args.repeat)),
        ("dead letter: encode", len(letters), *alternate(
            lambda: [old_letter(x) for x in letters], lambda: [encode_dead_letter(x) for x in letters], args.repeat)),
        ("dead letter: decode", len(letters), *alternate(
            lambda: [msgpack.unpackb(b, raw=False) for b in letter_bytes],
            lambda: [decode_dead_letter(b) for b in letter_bytes], args.repeat)),
        ("state: state_from_dict (dict -> state, domain rules)", len(state_docs), *alternate(
            lambda: [frozen_state.state_from_dict(d, config) for d in state_docs],
            lambda: [state_from_dict(d, config) for d in state_docs], args.repeat)),
        ("state: table value -> state (decode_state)", len(table_values), *alternate(
            lambda: [frozen_state.decode_state(v, config) for v in table_values],
            lambda: [decode_state(v, config) for v in table_values], args.repeat)),
        ("state: encode, json.dumps kept / msgspec what-if", len(state_docs), *alternate(
            lambda: [encode_state(s) for s in snapshots],
            lambda: [msgspec_json.encode(state_to_dict(s)) for s in snapshots], args.repeat)),
        ("  msgspec's table value bytes differ from json.dumps'", len(state_docs),
         f"{differ} of {len(state_docs)}", ""),
    ]

    with tempfile.TemporaryDirectory() as folder:
        store = CheckpointStore(Path(folder), config, clock=lambda: "2026-12-01T16:00:00+00:00")
        chosen = snapshots[:args.files]
        paths = []
        for i, state in enumerate(chosen):  # a folder per file: many states of one stream
            paths.append(store.beside(Path(folder) / str(i)).save(state))
        file_differ = 0
        for path in paths:
            text = path.read_text(encoding="utf-8")
            doc = json.loads(text)
            file_differ += (msgspec.json.format(msgspec.json.encode(doc), indent=2) + b"\n") != text.encode()

        def old_load():
            for path in paths:
                text = path.read_text(encoding="utf-8-sig")
                frozen_state.load_checkpoint_text(text, config)

        def new_load():
            for path in paths:
                store.load_file(path)
        assert [store.load_file(p).state for p in paths] == chosen
        rows.append((f"checkpoint: load a file ({len(paths)} files)", len(paths),
                     *alternate(old_load, new_load, args.repeat)))
        rows.append(("  msgspec encode+format(indent=2) files differ from json.dumps'", len(paths),
                     f"{file_differ} of {len(paths)}", ""))
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
