"""Where reading a CSV by columns starts to pay (``csv_columns.COLUMNS_MIN_BYTES``).

    python bench/bench_csv_columns.py [--days 500 1000 2000 4000 10000] [--rounds 5]

For synthetic files of several sizes (bench/synthetic.py, 12 streams) and for
data/sample, each round runs two fresh interpreters alternately, one reading
by rows and one by columns (the threshold set to force it), each timing
``read_day_events`` with its imports (pyarrow and numpy are imported by the
column reader on first use, so they are part of its cost). Medians of wall
and CPU time; the ratio columns / rows is the figure (below 1: columns pay).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Run in a fresh interpreter: the read of argv[2:] with the threshold argv[1].
_PROBE = """
import gc, json, resource, sys, time
started, cpu = time.perf_counter(), time.process_time()
from sequencer.adapters.files import sources
from sequencer.domain import SequencerConfig
gc.disable()  # as sequencer replay does
sources.COLUMNS_MIN_BYTES = int(sys.argv[1])
batch = sources.read_day_events(sys.argv[2:], SequencerConfig())
print(json.dumps({"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                  "events": len(batch.events)}))
"""


def probe(threshold: int, paths: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", _PROBE, str(threshold), *paths], capture_output=True,
                          text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout)


def main() -> int:
    from synthetic import write_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=[500, 1000, 2000, 4000, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows_only, columns_always = 1 << 60, 0
    with tempfile.TemporaryDirectory(prefix="bench-columns-") as folder:
        inputs = []
        for days in args.days:
            path = Path(folder) / f"synthetic{days}.csv"
            write_synthetic(path, days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
            inputs.append((f"synthetic, {days * 12:,} events", [str(path)]))
        sample = sorted(str(p) for p in (ROOT / "data" / "sample").glob("*.csv"))
        inputs.append((f"data/sample ({len(sample)} files)", sample))
        load = os.getloadavg()
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
              f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; {args.rounds} rounds, medians")
        print("| input | MB | by rows: wall / CPU s | by columns: wall / CPU s | columns / rows (wall, CPU) |")
        print("|---|---|---|---|---|")
        for name, paths in inputs:
            rows, columns = [], []
            for _ in range(args.rounds):  # alternate, so that both see the same load
                rows.append(probe(rows_only, paths))
                columns.append(probe(columns_always, paths))
            assert {r["events"] for r in rows} == {c["events"] for c in columns}
            size = sum(os.path.getsize(p) for p in paths) / 1e6

            def median(runs: list[dict], key: str) -> float:
                return statistics.median(run[key] for run in runs)

            print(f"| {name} | {size:.1f} | {median(rows, 'wall'):.3f} / {median(rows, 'cpu'):.3f} | "
                  f"{median(columns, 'wall'):.3f} / {median(columns, 'cpu'):.3f} | "
                  f"{median(columns, 'wall') / median(rows, 'wall'):.2f}, "
                  f"{median(columns, 'cpu') / median(rows, 'cpu'):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
