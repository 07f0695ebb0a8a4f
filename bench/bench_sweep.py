"""The two figures of ``sequencer sweep`` (issue 17), whole processes on the real sample data.

1. Eight configurations in one sweep against eight separate ``sequencer
   replay`` + ``sequencer report --json`` runs of the same configurations,
   measured in the same run (the separate runs' reports are also checked
   against the sweep's rows, to the last digit).
2. A grid of 1,080 configurations: whole-process time, with the folds and
   reports it shared and where the time went (from the sweep's sweep.json).

    .venv/bin/python bench/bench_sweep.py [--repeat 3] [--input data/sample]

Prints a markdown section for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

EIGHT = {"depth": [9, 13], "target_mode": ["rolling_median", "median_ladder"],
         "rules.skip_after_loss": [False, True]}
THOUSAND = ["depth=7,9,11,13,15", "median_position=3,5,7", "time_change=true,false",
            "no_trade_on_low_median=true,false", "target_mode=base,rolling_median,median_ladder",
            "rules.skip_after_loss=false,true", "rules.skip_weekdays=none,Mon,Fri"]


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)


def cli_value(value) -> str:
    return toml_value(value).strip('"')


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    return time.perf_counter() - started


def separate_runs(work: Path, inputs: str) -> tuple[float, list[dict]]:
    """Eight replay + report runs; the reports' ``all`` rows in grid order."""
    keys = list(EIGHT)
    reports = []
    elapsed = 0.0
    for i, values in enumerate(itertools.product(*EIGHT.values())):
        config = work / f"config{i}.toml"
        plain = [f"{k} = {toml_value(v)}" for k, v in zip(keys, values) if not k.startswith("rules.")]
        rules = [f"{k[6:]} = {toml_value(v)}" for k, v in zip(keys, values) if k.startswith("rules.")]
        config.write_text("\n".join(plain + ["[rules]"] + rules) + "\n")
        out = work / f"replay{i}"
        report_json = work / f"report{i}.json"
        started = time.perf_counter()
        subprocess.run([str(BIN / "sequencer"), "replay", inputs, "--out", str(out), "--config", str(config),
                        "--state-dir", str(work / f"state{i}")], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, cwd=ROOT)
        with report_json.open("w") as handle:
            subprocess.run([str(BIN / "sequencer"), "report", str(out / "decisions.csv"), "--config",
                            str(config), "--json"], check=True, stdout=handle, stderr=subprocess.PIPE,
                           cwd=ROOT)
        elapsed += time.perf_counter() - started
        reports.append(json.loads(report_json.read_text())["all"])
    return elapsed, reports


def sweep(work: Path, inputs: str, grid: list[str], name: str) -> tuple[float, Path]:
    out = work / name
    command = [str(BIN / "sequencer"), "sweep", inputs, "--out", str(out), "--top", "0"]
    for axis in grid:
        command += ["--grid", axis]
    return run(command), out


def sweep_rows_in_grid_order(out: Path, keys: list[str]) -> list[dict]:
    with (out / "sweep.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    order = {tuple(cli_value(v) for v in values): i
             for i, values in enumerate(itertools.product(*EIGHT.values()))}
    return sorted(rows, key=lambda row: order[tuple(row[k] for k in keys)])


def same(report: dict, row: dict) -> bool:
    for metric, value in report.items():
        cell = row[metric]
        if value is None:
            if cell != "":
                return False
        elif float(cell) != float(value):
            return False
    return True


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, load average {load}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--input", default=str(ROOT / "data" / "sample"))
    args = parser.parse_args()
    eight_grid = [f"{k}={','.join(cli_value(v) for v in vs)}" for k, vs in EIGHT.items()]
    separate_s, sweep8_s, sweep1000_s, sweep1000_cpu = [], [], [], []
    manifest = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for round_ in range(args.repeat):
            elapsed, reports = separate_runs(work, args.input)
            separate_s.append(elapsed)
            elapsed, out = sweep(work, args.input, eight_grid, "sweep8")
            sweep8_s.append(elapsed)
            rows = sweep_rows_in_grid_order(out, list(EIGHT))
            mismatched = [i for i, (r, row) in enumerate(zip(reports, rows)) if not same(r, row)]
            if mismatched:
                print(f"configurations {mismatched}: sweep row differs from replay + report", file=sys.stderr)
                return 1
            cpu_before = children_cpu()
            elapsed, out = sweep(work, args.input, THOUSAND, "sweep1000")
            sweep1000_s.append(elapsed)
            sweep1000_cpu.append(children_cpu() - cpu_before)
            manifest = json.loads((out / "sweep.json").read_text())
            print(f"round {round_ + 1}: 8 separate {separate_s[-1]:.2f}s, sweep of 8 {sweep8_s[-1]:.2f}s, "
                  f"sweep of {manifest['configurations']} {sweep1000_s[-1]:.2f}s", file=sys.stderr)

    med = statistics.median
    seconds = manifest["seconds"]
    print(f"Machine: {machine()}. Input: {args.input} ({manifest['day_events']:,} day events). "
          f"Median of {args.repeat} rounds, whole processes.\n")
    print("| run | time | ratio |\n|---|---|---|")
    print(f"| 8 x (`replay` + `report --json`), one configuration each | {med(separate_s):.2f} s | 1 (baseline) |")
    print(f"| `sweep` of the same 8 configurations | {med(sweep8_s):.2f} s | "
          f"{med(sweep8_s) / med(separate_s):.2f} |")
    print(f"| `sweep` of {manifest['configurations']:,} configurations | {med(sweep1000_s):.2f} s | "
          f"{med(sweep1000_s) / med(separate_s):.2f} |\n")
    print(f"The {manifest['configurations']:,}-configuration grid: `{' '.join('--grid ' + g for g in THOUSAND)}`. "
          f"It shared {manifest['folds']} folds and {manifest['reports']} reports over "
          f"{manifest['jobs']} processes; last round: read {seconds['read']:.2f} s, folds "
          f"{seconds['fold']:.2f} s and reports {seconds['report']:.2f} s (wall time in the processes, "
          f"summed), {seconds['total']:.2f} s inside the command; the whole process used "
          f"{med(sweep1000_cpu):.2f} s of CPU (median), {med(sweep1000_cpu) / med(sweep1000_s):.2f} "
          f"cores on average.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
