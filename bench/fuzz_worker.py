"""Fuzz run: random and adversarial records through a live worker on the embedded broker.

Each record is valid or broken by construction (tests/support/fuzz_records.py): every
valid day event must become one decision, every broken record exactly one dead
letter that fits, and the worker must stay up with no traceback in its log.

    python bench/fuzz_worker.py [--records 100000] [--seed N]

Prints the counts per kind of record and the problems found; exits 1 on any.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker  # noqa: E402
from tests.support.fuzz_records import fuzz_records, run_fuzz  # noqa: E402
from tests.support.recovery_helpers import Setup  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the worker")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    made = time.perf_counter()
    records = fuzz_records(args.records, seed)
    print(f"seed {seed}: {len(records)} records made in {time.perf_counter() - made:.1f}s, "
          f"{sum(len(r.value or b'') for r in records) / 1e6:.1f} MB")
    # Kept when anything goes wrong: the worker log is the evidence.
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-worker-"))
    with EmbeddedBroker(log_path=tmp / "broker.log") as broker:
        report = run_fuzz(Setup(broker.bootstrap, tmp / "state"), records, tmp / "worker.log",
                          timeout_s=args.timeout)
    for family, count in sorted(report.families.items(), key=lambda item: -item[1]):
        print(f"  {count:>7}  {family}")
    print(f"{report.records} records in {report.seconds:.0f}s ({report.records / report.seconds:,.0f}/s, "
          f"publishing included): worker {'alive' if report.worker_alive else 'DEAD'}, "
          f"{report.tracebacks} tracebacks, {report.decisions} decisions "
          f"(valid: {report.families['valid']}), {report.dead_letters} dead letters "
          f"(broken: {report.records - report.families['valid']})")
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    print(f"{'0 crashes, every record folded or dead-lettered' if report.ok else 'FAILED'}")
    if not report.ok:
        print(f"logs kept in {tmp}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
