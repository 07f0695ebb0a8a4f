"""Group chaos loop: a group of workers folds a real-data run (data/sample) on the
embedded broker while, every few seconds, a member is SIGKILLed or stopped and
replaced, the broker is frozen (SIGSTOP/SIGCONT, at times past the session
timeout) or a member joins; then a last worker alone catches up, and the
differences from `sequencer replay` are counted (checkpoint states,
`sequencer verify`, decisions deduplicated by (stream, date)).

    python bench/chaos_loop.py [--rounds 20] [--workers 2] [--seed N] [--publish-seconds 60]

Prints the incidents, the differences and their number; exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.recovery_helpers import loop_on_own_broker, run_group_chaos  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--publish-seconds", type=float, default=None,
                        help="spread publishing over this long (default: 4 s per round)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"seed {seed} (--seed {seed} draws the same incidents)", flush=True)
    return loop_on_own_broker(
        "chaos-loop-",
        lambda setup, broker, events, work: run_group_chaos(
            setup, broker, events, args.rounds, work, seed=seed, workers=args.workers,
            publish_seconds=args.publish_seconds or max(20.0, 4.0 * args.rounds)),
        lambda report, seconds: (f"seed {seed}: {report.kills} incidents, {args.workers} workers, "
                                 f"{report.events} events, {seconds:.0f}s: {report.count} differences"))


if __name__ == "__main__":
    sys.exit(main())
