"""Resident memory of N stream states with full windows and histories.

    python bench/memory_states.py [--streams 100000]

Each stream gets its own peaks (distinct float objects, as in real use).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sequencer.domain import DayEvent, SequencerConfig, SlotOutcome, apply_day, initial_state  # noqa: E402


def resident_mb() -> float:
    """Current resident set size. ``ru_maxrss`` would not do: Linux carries the
    parent's high-water mark over ``fork`` + ``exec`` (seen: 216 MB "before")."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, default=100_000)
    args = parser.parse_args()
    config = SequencerConfig()
    rnd = random.Random(1)
    before = resident_mb()
    states = {}
    slots = ("07:30", "08:00", "09:00")
    for n in range(args.streams):
        stream = f"ES{n + 1}"
        state = initial_state("ES1", config)._replace(stream=stream)
        for day in range(1, 16):
            outcomes = {s: SlotOutcome(rnd.choice(("Win", "Loss", "BE")), rnd.uniform(0, 60)) for s in slots}
            event = DayEvent(stream, "ES", "S1", f"2025-01-{day:02d}", outcomes)
            state, _ = apply_day(state, event, config)
        states[stream] = state
    after = resident_mb()
    print(f"{args.streams} stream states (full 13-day windows and histories): "
          f"{after - before:.0f} MB resident on top of {before:.0f} MB")


if __name__ == "__main__":
    main()
