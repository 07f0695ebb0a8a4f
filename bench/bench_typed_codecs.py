"""Per-event decode + SPEC 3 validation: the typed decoder against the one it replaced.

Both over the same day events of the synthetic workload (msgpack as the
publisher writes them, and JSON), best of ``--repeat`` passes, alternating in
one process, so the ratio is a same-run figure:

- before: ``tests/support/frozen_event_validation.py`` (``decode_payload`` +
  ``parse_day_event``, the code of main at 0b94c4e);
- after: ``codecs.EventDecoder.decode`` (msgspec structs + ``EventRules``);
- the worker's side: ``EventProcessor.process`` of the same records (decode,
  step 0, fold, offsets), before and after (the old decoder swapped in).

    python bench/bench_typed_codecs.py --events 120000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
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
    for name, before, after in [
        ("msgpack event: decode + validate", lambda: [frozen.decode_event(d, config) for d in packed],
         lambda: [decoder.decode(d) for d in packed]),
        ("JSON event: decode + validate", lambda: [frozen.decode_event(d, config) for d in as_json],
         lambda: [decoder.decode(d) for d in as_json]),
    ]:
        b = a = float("inf")
        for _ in range(2):  # alternate the two, best of all passes
            b = min(b, best(before, args.repeat))
            a = min(a, best(after, args.repeat))
        rows.append((name, b, a))
    b = a = float("inf")
    for _ in range(2):
        b = min(b, best(processor_run(True), args.repeat))
        a = min(a, best(processor_run(False), args.repeat))
    rows.append(("worker: EventProcessor.process per record", b, a))

    n = len(events)
    print(f"{n} events, best of {2 * args.repeat} passes; {platform.machine()}, Python "
          f"{platform.python_version()}, msgspec {msgspec.__version__}")
    print(f"{'step':44} {'before µs':>10} {'after µs':>10} {'ratio':>7}")
    for name, b, a in rows:
        print(f"{name:44} {b / n * 1e6:10.2f} {a / n * 1e6:10.2f} {a / b:7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
