"""The worker's latency and rate, several trees alternated in one run (issue 15, 18).

    python bench/bench_worker_ab.py --variant main=main --variant branch=HEAD \\
        --variant within10=HEAD:BATCH_WITHIN_S=0.01 --rounds 2 [--live-days 15] [--no-latency] [--no-rate]

Each variant is a git commit of this repository (``NAME=REF``), optionally
with module constants of ``sequencer/adapters/faust/worker.py`` replaced
(``NAME=REF:CONST=VALUE[,CONST=VALUE]``), unpacked with ``git archive`` into
a temporary folder. The bench scripts of *this* tree (bench_latency.py,
bench_streaming.py, synthetic.py) are copied into every variant, so all run
the same measurement; each runs its own ``sequencer`` (the scripts start the
worker with ``python -m`` from the variant's folder) in this interpreter's
environment. Round *r* runs the variants in turn, starting with the *r*-th,
so a slow moment of the shared machine does not always hit the same one.

Per run: ``bench_latency.py --live-days N`` (live feed p50/p99, evenly spread
p50/p99/max, burst max and count within 1 s) and ``bench_streaming.py
--worker-only`` (the worker's rate over 120,000 events and its ratio to the
plain ``async for`` consumer of the same run). Medians per variant at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_FILES = ("bench_latency.py", "bench_streaming.py", "synthetic.py")

LIVE = re.compile(r"^live, streamer feed .*p50 (\d+) ms, p99 (\d+) ms", re.M)
SPREAD = re.compile(r"^live, evenly spread.*p50 (\d+) ms, p99 (\d+) ms, max (\d+) ms", re.M)
BURST = re.compile(r"^burst, .*max (\d+) ms over (\d+) decisions \((\d+) of \d+ within 1 s\)", re.M)
RATE = re.compile(r"^sequencer worker end to end: ([\d,]+) events/s = ([\d.]+)% of the plain `async for`", re.M)


def unpack(name: str, spec: str, into: Path) -> Path:
    ref, _, patches = spec.partition(":")
    tree = into / name
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    for file in BENCH_FILES:
        shutil.copy(ROOT / "bench" / file, tree / "bench" / file)
    if patches:
        module = tree / "sequencer" / "adapters" / "faust" / "worker.py"
        text = module.read_text()
        for patch in patches.split(","):
            const, _, value = patch.partition("=")
            text, count = re.subn(rf"^{re.escape(const)} = .*$", f"{const} = {value}", text, flags=re.M)
            if count != 1:
                raise SystemExit(f"variant {name}: no single `{const} = ...` line in sequencer/adapters/faust/worker.py")
        module.write_text(text)
    return tree


def run(tree: Path, script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(tree / "bench" / script), *args], cwd=tree,
                          capture_output=True, text=True, timeout=900)
    kept = tree.parent / f"{tree.name}-{script.removesuffix('.py')}-{len(list(tree.parent.glob(tree.name + '-' + script.removesuffix('.py') + '-*')))}.txt"
    kept.write_text(done.stdout + done.stderr)  # every run's own output, beside the trees
    if done.returncode:
        print(done.stdout[-2000:], done.stderr[-2000:], sep="\n")
        return ""
    return done.stdout


def measure(tree: Path, live_days: int, latency: bool, rate: bool) -> dict[str, float]:
    found: dict[str, float] = {}
    if latency:
        out = run(tree, "bench_latency.py", "--live-days", str(live_days))
        if m := LIVE.search(out):
            found["feed_p50"], found["feed_p99"] = float(m[1]), float(m[2])
        if m := SPREAD.search(out):
            found["spread_p50"], found["spread_p99"], found["spread_max"] = map(float, m.groups())
        if m := BURST.search(out):
            found["burst_max"], found["burst_within_1s"] = float(m[1]), float(m[3])
    if rate:
        out = run(tree, "bench_streaming.py", "--worker-only")
        if m := RATE.search(out):
            found["rate"], found["rate_pct_async_for"] = float(m[1].replace(",", "")), float(m[2])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", required=True, help="NAME=REF[:CONST=VALUE,...]")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--live-days", type=int, default=15)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--no-rate", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-worker-ab-"))
    variants = []
    for item in args.variant:
        name, _, spec = item.partition("=")
        variants.append((name, unpack(name, spec, work)))
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    for round_no in range(args.rounds):
        order = variants[round_no % len(variants):] + variants[:round_no % len(variants)]
        for name, tree in order:
            found = measure(tree, args.live_days, not args.no_latency, not args.no_rate)
            found["load"] = os.getloadavg()[0]
            results[name].append(found)
            print(f"round {round_no + 1} {name}: " + ", ".join(f"{k} {v:g}" for k, v in found.items()), flush=True)
    print("\nmedians per variant (ms unless a rate):")
    for name, runs in results.items():
        keys = sorted({k for r in runs for k in r})
        print(f"  {name}: " + ", ".join(
            f"{k} {statistics.median(r[k] for r in runs if k in r):g}" for k in keys))


if __name__ == "__main__":
    main()
