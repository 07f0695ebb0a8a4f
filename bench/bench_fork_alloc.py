"""What first-touch memory costs two forked processes at once, against one after the other.

    python bench/bench_fork_alloc.py [--objects 600000] [--rounds 2]

A split replay's partitions build their day events in fresh memory, both at
once, right after the fork. This forks two children that each build
``--objects`` small objects (a tuple of two floats and a dict: about the size
of a slot outcome), first one after the other, then both at once, and prints
each child's minor page faults, CPU and system time. The parent first builds
as many objects itself and keeps them, as the parent of a replay keeps what
it read.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time


def build(count: int) -> list:
    return [(float(i), float(i) + 0.5, {"a": float(i)}) for i in range(count)]


def child(label: str, count: int) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    kept = build(count)
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(f"{label:34s} faults {after.ru_minflt - before.ru_minflt:7d}  "
          f"CPU {after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime:.3f} s  "
          f"system {after.ru_stime - before.ru_stime:.3f} s  wall {time.perf_counter() - started:.3f} s",
          flush=True)
    del kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=600_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    gc.disable()
    inherited = build(args.objects)  # noqa: F841 - what the parent holds at the fork
    print(f"load average {os.getloadavg()[0]:.1f}; {args.objects:,} objects per child")
    for _ in range(args.rounds):
        for together in (False, True):
            pids = []
            for index in range(2):
                pid = os.fork()
                if pid == 0:
                    child(f"child {index}, {'both at once' if together else 'one after the other'}", args.objects)
                    os._exit(0)
                if together:
                    pids.append(pid)
                else:
                    os.waitpid(pid, 0)
            for pid in pids:
                os.waitpid(pid, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
