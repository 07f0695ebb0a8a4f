"""Figures of the performance report (issue 14), measured in one run:

    python bench/bench_report.py [--days 10000] [--rounds 5] [--baseline REF]

1. `sequencer report DECISIONS.csv --json` over the decisions of the
   120,000-event synthetic workload (bench/synthetic.py, 12 streams x 10,000
   days), whole process (interpreter start to exit); target under 1 s.
2. `sequencer replay` of the same workload with this code (decisions with
   the trade columns, performance.csv, the closing summary) against the
   baseline commit (default: where this branch left main), exported with
   `git archive` into a temporary folder and run by the same interpreter;
   rounds alternate so that load on the machine hits both alike. Target:
   within 5% of the baseline.

``--bad-rows N`` spoils N rows of the synthetic workload, spread through
it, each with a cell the checks refuse (``spoil_rows``: a result, a
negative, NaN or infinite peak, a slot, a future or impossible date, an
instrument that disagrees with its stream, a stream name, a target beyond
the limit, an empty result, an unprintable direction; no quote, no row of
another width). ``--input FILE|FOLDER`` replays that instead of the synthetic workload
(e.g. data/sample: a small input must not get slower). Wall-clock and
CPU-time medians; the machine is shared, read the ratios.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(Path(__file__).resolve().parent))


#: CPU seconds (user + system) of the last command and its children: less
#: sensitive than wall time to the other engineers' load on the shared cores.
CPU: list[float] = []


def timed(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def export_baseline(ref: str, into: Path) -> str:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", ref], capture_output=True, text=True,
                            check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    compile_tree(into)
    return commit


def compile_tree(tree: Path) -> None:
    """Byte-compile the tree's packages, as an installed package is: else, where
    PYTHONDONTWRITEBYTECODE is set (this machine's sessions), every timed process
    compiles the modules it imports again (about 60 ms a replay)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    for package in ("sequencer", "streamer"):
        if (tree / package).is_dir():
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / package)], check=True, env=env,
                           stdout=subprocess.DEVNULL)


def machine_and_load() -> str:
    """The machine and its load average now, as every replay bench's report opens."""
    load = os.getloadavg()
    return (f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")


def trees_and_workload(work: Path, ref: str | None, days: int) -> tuple[str, Path, dict[str, Path]]:
    """The baseline (``baseline_ref(ref)``) exported into ``work/baseline`` and
    this tree, both byte-compiled, and the synthetic workload of ``days`` days
    in ``work/synthetic.csv``: (baseline commit, workload, the trees by name)."""
    from synthetic import write_synthetic

    (work / "baseline").mkdir()
    commit = export_baseline(baseline_ref(ref), work / "baseline")
    compile_tree(ROOT)
    data = work / "synthetic.csv"
    write_synthetic(data, days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
    return commit, data, {"baseline": work / "baseline", "this code": ROOT}


def baseline_ref(ref: str | None) -> str:
    """``ref``, or by default the commit where this branch left main."""
    return ref or subprocess.run(["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
                                 capture_output=True, text=True, check=True).stdout.strip()


def main() -> int:
    from synthetic import write_synthetic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", default=None, help="git ref of the baseline (default: merge-base with main)")
    parser.add_argument("--jobs", default=None, help="replay --jobs (default: replay's own choice)")
    parser.add_argument("--bad-rows", type=int, default=0, metavar="N",
                        help="spoil N rows of the synthetic workload with a cell the checks refuse")
    parser.add_argument("--input", type=Path, default=None,
                        help="replay this file or folder instead of the synthetic workload (e.g. data/sample)")
    args = parser.parse_args()

    ref = baseline_ref(args.baseline)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        work = Path(folder)
        baseline_src = work / "baseline"
        baseline_src.mkdir()
        commit = export_baseline(ref, baseline_src)
        compile_tree(ROOT)
        if args.input is None:
            data = work / "synthetic.csv"
            rows = write_synthetic(data, args.days, ["ES", "NQ", "YM", "CL", "GC", "NG"])
            spoil_rows(data, args.bad_rows)
        else:
            data = args.input.resolve()
            rows = sum(sum(1 for _ in p.open()) - 1 for p in ([data] if data.is_file() else data.glob("*.csv")))
        python = sys.executable
        jobs = ["--jobs", args.jobs] if args.jobs else []
        env_new = dict(os.environ, PYTHONPATH=str(ROOT))
        env_old = dict(os.environ, PYTHONPATH=str(baseline_src))

        def replay(env: dict[str, str], name: str, i: int) -> float:
            return timed([python, "-m", "sequencer.cli.main", "replay", str(data), "--out", str(work / f"{name}{i}"),
                          "--state-dir", str(work / f"{name}-state{i}"), *jobs], env=env, cwd=work)

        old, new, old_cpu, new_cpu = [], [], [], []
        for i in range(args.rounds):  # alternate, so both see the same load
            old.append(replay(env_old, "old", i))
            old_cpu.append(CPU[-1])
            new.append(replay(env_new, "new", i))
            new_cpu.append(CPU[-1])
        decisions = work / "new0" / "decisions.csv"
        report = [timed([python, "-m", "sequencer.cli.main", "report", str(decisions), "--json"], env=env_new,
                        cwd=work) for _ in range(args.rounds)]
        report_cpu = CPU[-args.rounds:]
        report_rules = [timed([python, "-m", "sequencer.cli.main", "report", str(decisions), "--json",
                               "--rules", str(_rules_file(work))], env=env_new, cwd=work)
                        for _ in range(args.rounds)]
        size_mb = decisions.stat().st_size / 1e6
        decision_count = sum(1 for _ in decisions.open()) - 1

    print(machine_and_load())
    print(f"input: {rows} CSV rows, {decision_count} decisions ({size_mb:.1f} MB decisions.csv); "
          f"{args.rounds} rounds; baseline {commit[:7]}")
    print(f"report --json, whole process: median {statistics.median(report):.2f} s "
          f"(min {min(report):.2f}, max {max(report):.2f})")
    print(f"report --json, CPU (user + system): median {statistics.median(report_cpu):.2f} s")
    print(f"report --json with all four rules: median {statistics.median(report_rules):.2f} s "
          f"(min {min(report_rules):.2f}, max {max(report_rules):.2f})")
    ratio = statistics.median(new) / statistics.median(old)
    print(f"replay baseline: median {statistics.median(old):.2f} s {sorted(round(t, 2) for t in old)}")
    print(f"replay this code: median {statistics.median(new):.2f} s {sorted(round(t, 2) for t in new)}")
    print(f"replay ratio (this / baseline, medians): {ratio:.3f}")
    cpu_ratio = statistics.median(new_cpu) / statistics.median(old_cpu)
    print(f"replay CPU (user + system, all processes): baseline median {statistics.median(old_cpu):.2f} s, "
          f"this code {statistics.median(new_cpu):.2f} s, ratio {cpu_ratio:.3f}")
    return 0


#: (column, cell) of a spoiled row: each a cell the checks refuse, none a quote
#: or a change of width (those send the whole file to the row reader).
_BAD_CELLS = [(8, "Winn"), (6, "-1.5"), (6, "nan"), (1, "07:45"), (0, "2099-01-01"), (0, "2021-02-30"),
              (4, "NQ"), (3, "ES 1"), (5, "1e13"), (6, "inf"), (8, ""), (7, "Lo\x01ng")]


def spoil_rows(path: Path, count: int) -> None:
    """Give ``count`` rows of the synthetic CSV ``path`` (below its header, evenly
    spread) a cell of ``_BAD_CELLS``, in turn."""
    if count <= 0:
        return
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    step = max(1, (len(lines) - 2) // count)
    for i in range(count):
        at = 1 + i * step
        cells = lines[at].split(",")
        column, cell = _BAD_CELLS[i % len(_BAD_CELLS)]
        cells[column] = cell
        lines[at] = ",".join(cells)
    path.write_bytes("\r\n".join(lines).encode("utf-8"))


def _rules_file(work: Path) -> Path:
    path = work / "rules.toml"
    path.write_text('skip_weekdays = ["Mon"]\nskip_days_of_month = [1]\nskip_after_loss = true\nmin_slot_sum = -4\n')
    return path


if __name__ == "__main__":
    sys.exit(main())
