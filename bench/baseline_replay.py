"""The straightforward replay the issue measures against: pandas groupby, state
as a dict deep-copied per event, the SPEC 5 rules written plainly.

Run as its own process: ``python bench/baseline_replay.py FILE.csv OUTDIR``.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import sys
from pathlib import Path

import pandas as pd

BASES = {"ES": (10, 5), "NQ": (50, 25), "YM": (100, 50), "CL": (0.5, 0.25), "GC": (5, 2.5), "NG": (0.05, 0.025)}
SESSIONS = {"S1": ["07:30", "08:00", "09:00"], "S2": ["09:30", "10:00", "10:30", "11:00"]}
SCORES = {"Win": 1, "Loss": -2, "BE": 0, "NoTrade": 0, "TIME": 0}
DEPTH, POSITION, PROMOTION, PCT = 13, 7, 2, 400


def new_state(stream: str, instrument: str, session: str) -> dict:
    base = BASES[instrument][0]
    return {"stream": stream, "instrument": instrument, "session": session, "last": None, "window": [],
            "histories": {s: [] for s in SESSIONS[session]}, "current_time": SESSIONS[session][0],
            "rolling": base, "ladder": base, "step": 0, "days": 0, "no_trade": False}


def apply(state: dict, date: str, slots: dict) -> tuple[dict, dict]:
    state = copy.deepcopy(state)
    base, inc = BASES[state["instrument"]]
    traded = state["current_time"]
    for slot, history in state["histories"].items():
        if slot in slots:
            history.append(SCORES[slots[slot]["result"]])
            del history[:-DEPTH]
    sums = {s: sum(h) for s, h in state["histories"].items()}
    outcome = slots.get(traded)
    if outcome and outcome["result"] == "Loss":
        others = [(sums[s], -i, s) for i, s in enumerate(state["histories"]) if s != traded]
        best = max(others)
        if best[0] > sums[traded]:
            state["current_time"] = best[2]
    peak = outcome["peak"] if outcome else None
    median = None
    if peak is not None:
        state["window"].append(peak)
        del state["window"][:-DEPTH]
        if len(state["window"]) < DEPTH:
            state["rolling"] = state["ladder"] = base
            state["days"] += 1
            state["no_trade"] = False
        else:
            cap = round(base * PCT / 100, 10)
            median = sorted(state["window"])[POSITION - 1]
            state["rolling"] = min(max(round(math.floor(round(median / inc, 9)) * inc, 10), base), cap)
            rungs = [round(base * (1 + 0.5 * i), 10) for i in range(15)]
            desired = max([i for i, r in enumerate(rungs) if median >= r], default=0)
            if desired > state["step"]:
                if state["days"] >= PROMOTION:
                    state["step"] += 1
                    state["days"] = 1
                else:
                    state["days"] += 1
            elif desired < state["step"]:
                state["step"], state["days"] = desired, 1
            else:
                state["days"] += 1
            state["ladder"] = min(rungs[state["step"]], cap)
            state["no_trade"] = median < base
    state["last"] = date
    return state, {"stream": state["stream"], "date": date, "traded_slot": traded, "slot_sums": json.dumps(sums),
                   "next_slot": state["current_time"], "rolling_median": median,
                   "rolling_median_target": state["rolling"], "median_ladder_target": state["ladder"],
                   "ladder_step": state["step"], "days_at_level": state["days"], "no_trade_next": state["no_trade"]}


def main() -> None:
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    frame = pd.read_csv(source)
    frame["Peak"] = frame["Peak"].astype(object).where(frame["Peak"].notna(), None)
    states: dict[str, dict] = {}
    with (out / "decisions.csv").open("w", newline="") as handle:
        writer = None
        for (date, stream), rows in frame.sort_values(["Date", "Stream"]).groupby(["Date", "Stream"], sort=False):
            slots = {r.Time: {"result": r.Result, "peak": r.Peak} for r in rows.itertuples()}
            first = rows.iloc[0]
            state = states.get(stream) or new_state(stream, first.Instrument, first.Session)
            states[stream], decision = apply(state, date, slots)
            if writer is None:
                writer = csv.DictWriter(handle, fieldnames=list(decision))
                writer.writeheader()
            writer.writerow(decision)
    (out / "states.json").write_text(json.dumps(states))


if __name__ == "__main__":
    main()
