"""Crash loop: SIGKILL the worker 20 times at random moments of a real-data run
(data/sample) on the embedded broker, restart it each time, then count the
differences from `sequencer replay` (checkpoint states, `sequencer verify`,
decisions deduplicated by (stream, date)).

    python bench/crash_loop.py [--kills 20] [--seed N] [--publish-seconds 40]

Prints the differences and their number; exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.recovery_helpers import loop_on_own_broker, run_crash_loop  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--publish-seconds", type=float, default=None,
                        help="spread publishing over this long (default: 2 s per kill)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    return loop_on_own_broker(
        "crash-loop-",
        lambda setup, broker, events, work: run_crash_loop(
            setup, events, args.kills, work, seed=seed,
            publish_seconds=args.publish_seconds or max(20.0, 2.0 * args.kills)),
        lambda report, seconds: (f"seed {seed}: {report.kills} random SIGKILLs (alive {report.kill_times} s), "
                                 f"{report.events} events, {seconds:.0f}s: {report.count} differences"))


if __name__ == "__main__":
    sys.exit(main())
