"""Synthetic long-format trade files for benchmarks: N streams x D trading days.

Values follow the real files' layout (shared/data/real/trades_*.csv); results
and peaks are random but seeded, so runs are repeatable.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from pathlib import Path

INSTRUMENTS = {"ES": (10.0, 0.25), "NQ": (50.0, 0.25), "YM": (100.0, 1.0),
               "CL": (0.5, 0.01), "GC": (5.0, 0.1), "NG": (0.05, 0.001)}
SESSIONS = {"S1": ("07:30", "08:00", "09:00"), "S2": ("09:30", "10:00", "10:30", "11:00")}
RESULTS = ("Win", "Win", "Loss", "BE", "NoTrade", "TIME")
HEADER = ["Date", "Time", "Session", "Stream", "Instrument", "Target", "Peak",
          "Direction", "Result", "Range", "Profit"]


#: 10,000 trading days from here end in 2018: the workload stays in the past
#: (a day event dated after today is rejected as in the future, SPEC 3).
FIRST_DAY = dt.date(1980, 1, 1)


def trading_days(count: int, start: dt.date = FIRST_DAY) -> list[dt.date]:
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def write_synthetic(path: Path, days: int, instruments: list[str], seed: int = 7) -> int:
    """Write one CSV; returns the number of rows."""
    rnd = random.Random(seed)
    rows = 0
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for day in trading_days(days):
            for instrument in instruments:
                base, tick = INSTRUMENTS[instrument]
                for session, slots in SESSIONS.items():
                    stream = instrument + session[1:]
                    for slot in slots:
                        peak = "" if rnd.random() < 0.2 else round(round(rnd.uniform(0, 6 * base) / tick) * tick, 6)
                        writer.writerow([day.isoformat(), slot, session, stream, instrument, base, peak,
                                         rnd.choice(("Long", "Short")), rnd.choice(RESULTS),
                                         round(rnd.uniform(0, 5 * base), 4), round(rnd.uniform(-2, 1) * base, 4)])
                        rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--days", type=int, default=10_000)
    parser.add_argument("--instruments", default="ES,NQ,YM,CL,GC,NG")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = write_synthetic(args.out, args.days, args.instruments.split(","), args.seed)
    print(f"{args.out}: {rows} rows")


if __name__ == "__main__":
    main()
