"""File sources (SPEC 3 long format), the ``sequencer replay`` and ``sequencer state`` commands,
and the replay of the real data set checked against an independent fold."""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest

from sequencer.cli.main import main
from sequencer.domain import SequencerConfig, SlotOutcome
from sequencer.adapters.files.sources import SourceError, read_day_events

CONFIG = SequencerConfig()
REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
HEADER = ["Date", "Time", "Session", "Stream", "Instrument", "Target", "Peak", "Direction", "Result",
          "Range", "Profit"]
#: SPEC 5's decision fields, in its order, written out independently of the code.
DECISION_COLUMNS = [
    "stream", "instrument", "date", "traded_slot", "result", "peak", "slot_sums", "time_change",
    "next_slot", "rolling_median", "rolling_median_target", "median_ladder_target", "ladder_step",
    "days_at_level", "next_target", "no_trade_next", "time_reason", "target_reason",
    "traded", "profit", "profit_usd",  # SPEC 8.1, after the columns of SPEC 5
]
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# A small long-format data set: two streams, a missing slot, missing peaks, several
# spellings, and the rows of 2025-01-06 placed before the others.
ROWS = [
    ["2025-01-06", "07:30", "S1", "ES1", "ES", 10.0, None, "Long", "NoTrade", 3.0, 0.0],
    ["2025-01-02", "07:30", "S1", "ES1", "ES", 10.0, 12.5, "Long", "Win", 9.5, 10.0],
    ["2025-01-02", "08:00", "S1", "ES1", "ES", 10.0, None, "Short", "Loss", 11.0, -10.25],
    ["2025-01-02", "09:00", "S1", "ES1", "ES", 10.0, 20.0, "Long", "BREAK_EVEN", 8.25, 0.0],
    ["2025-01-02", "09:30", "S2", "NQ2", "NQ", 50.0, 61.5, "Long", "Loss", 40.0, -50.5],
    ["2025-01-02", "10:00", "S2", "NQ2", "NQ", 50.0, None, "Long", "no trade", None, 0.0],
    ["2025-01-02", "10:30", "S2", "NQ2", "NQ", 50.0, 75.0, "Short", "Win", 45.0, 50.0],
    ["2025-01-03", "07:30", "S1", "ES1", "ES", 10.0, 7.75, "Short", "Loss", 6.5, -10.0],
    ["2025-01-03", "08:00", "S1", "ES1", "ES", 10.0, 14.0, "Long", "win", 9.0, 10.0],
    ["2025-01-03", "11:00", "S2", "NQ2", "NQ", 50.0, None, "Long", "TIME", 30.0, 12.0],
]


def cell(value) -> str:
    return "" if value is None else str(value)


def write_csv(path: Path, rows, header=HEADER) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow([cell(v) for v in row])
    return path


def write_parquet(path: Path, rows, datetime_dates: bool = False) -> Path:
    frame = pd.DataFrame(rows, columns=HEADER)
    if datetime_dates:
        frame["Date"] = pd.to_datetime(frame["Date"])
    frame.to_parquet(path)
    return path


def write_jsonl_rows(path: Path, rows) -> Path:
    with path.open("w") as handle:
        for row in rows:
            handle.write(json.dumps({k: v for k, v in zip(HEADER, row) if v is not None}) + "\n")
    return path


def write_jsonl_events(path: Path, rows) -> Path:
    days: dict = {}
    for date, time, session, stream, instrument, target, peak, direction, result, rng, profit in rows:
        day = days.setdefault((stream, date), {"stream": stream, "instrument": instrument,
                                                "session": session, "date": date, "slots": {}})
        outcome = {"result": result, "peak": peak, "target": target, "direction": direction,
                   "range": rng, "profit": profit}
        day["slots"][time] = {k: v for k, v in outcome.items() if v is not None}
    with path.open("w") as handle:
        for day in days.values():
            handle.write(json.dumps(day) + "\n")
    return path


def summary(events):
    return [(e.stream, e.date, {s: o.result for s, o in e.slots.items()}) for e in events]


EXPECTED_DAYS = [  # by hand from ROWS: date order, then stream; canonical result names
    ("ES1", "2025-01-02", {"07:30": "Win", "08:00": "Loss", "09:00": "BE"}),
    ("NQ2", "2025-01-02", {"09:30": "Loss", "10:00": "NoTrade", "10:30": "Win"}),
    ("ES1", "2025-01-03", {"07:30": "Loss", "08:00": "Win"}),
    ("NQ2", "2025-01-03", {"11:00": "TIME"}),
    ("ES1", "2025-01-06", {"07:30": "NoTrade"}),
]


# --- sources ------------------------------------------------------------------------------


@pytest.mark.parametrize("writer, name", [
    (write_csv, "t.csv"),
    (write_parquet, "t.parquet"),
    (lambda p, r: write_parquet(p, r, datetime_dates=True), "t.parquet"),
    (write_jsonl_rows, "t.jsonl"),
    (write_jsonl_events, "t.jsonl"),
])
def test_every_format_reads_into_the_same_day_events(tmp_path: Path, writer, name):
    batch = read_day_events([writer(tmp_path / name, ROWS)], CONFIG)
    assert batch.rejects == []
    assert summary(batch.events) == EXPECTED_DAYS
    first = batch.events[0]
    assert (first.instrument, first.session) == ("ES", "S1")
    assert first.slots["07:30"] == SlotOutcome("Win", 12.5, 10.0, "Long", 9.5, 10.0)
    assert first.slots["08:00"] == SlotOutcome("Loss", None, 10.0, "Short", 11.0, -10.25)
    assert batch.events[1].slots["10:00"] == SlotOutcome("NoTrade", None, 50.0, "Long", None, 0.0)


def test_all_formats_agree_exactly(tmp_path: Path):
    reads = [
        read_day_events([write_csv(tmp_path / "a.csv", ROWS)], CONFIG).events,
        read_day_events([write_parquet(tmp_path / "a.parquet", ROWS)], CONFIG).events,
        read_day_events([write_jsonl_rows(tmp_path / "a.jsonl", ROWS)], CONFIG).events,
        read_day_events([write_jsonl_events(tmp_path / "b.jsonl", ROWS)], CONFIG).events,
    ]
    assert all(events == reads[0] for events in reads)


def test_rows_of_one_day_may_come_from_several_files(tmp_path: Path):
    a = write_csv(tmp_path / "a.csv", [r for r in ROWS if r[3] == "ES1"])
    b = write_jsonl_rows(tmp_path / "b.jsonl", [r for r in ROWS if r[3] == "NQ2"])
    assert summary(read_day_events([b, a], CONFIG).events) == EXPECTED_DAYS


def test_optional_columns_may_be_absent_and_times_normalised(tmp_path: Path):
    path = tmp_path / "min.csv"
    path.write_text("date,time,stream,result\n2025-01-02,7:30,ES1,WIN\n2025-01-02,08:00:00,ES1,loss\n")
    batch = read_day_events([path], CONFIG)
    assert batch.rejects == []
    assert summary(batch.events) == [("ES1", "2025-01-02", {"07:30": "Win", "08:00": "Loss"})]
    assert batch.events[0].slots["07:30"] == SlotOutcome("Win")


BAD_CSV = [
    # (row, words of the reason); every row is for ES1, the first one is good
    (["2025-01-02", "07:30", "S1", "ES1", "ES", "10", "12.5", "Long", "Win", "9.5", "10"], None),
    (["2025-01-02", "08:00", "S1", "ES1", "ES", "10", "", "Long", "Maybe", "9.5", "10"], "bad result"),
    (["2025-01-02", "09:00", "S1", "ES1", "ES", "10", "-1", "Long", "Win", "9.5", "10"], ">= 0"),
    (["2025-01-02", "07:30", "S1", "ES1", "ES", "10", "12.5", "Long", "Win", "9.5", "10"], "duplicate"),
    (["2025-01-03", "07:30", "S1", "ES1", "ES", "10", "nan", "Long", "Win", "9.5", "10"], "finite"),
    (["2025-01-03", "07:30", "S1", "ES1", "ES", "10", "inf", "Long", "Win", "9.5", "10"], "finite"),
    (["2025-01-03", "08:00", "S1", "ES1", "NQ", "10", "1", "Long", "Win", "9.5", "10"], "disagree"),
    (["2025-01-03", "09:30", "S1", "ES1", "ES", "10", "1", "Long", "Win", "9.5", "10"], "unknown slot"),
    (["2025-13-03", "08:00", "S1", "ES1", "ES", "10", "1", "Long", "Win", "9.5", "10"], "date"),
    (["2025-01-03", "08:00", "S1", "XX1", "XX", "10", "1", "Long", "Win", "9.5", "10"], "unknown instrument"),
    (["2025-01-03", "08:00", "S1", "../x", "ES", "10", "1", "Long", "Win", "9.5", "10"], "must match"),
    (["2025-01-03", "08:00"], "fields"),
    (["2025-01-03", "09:00", "S1", "ES1", "ES", "10", "abc", "Long", "Win", "9.5", "10"], "peak"),
    (["2025-01-03", "09:00", "S1", "ES1", "ES", "10", "3", "Long", "Win", "-2", "10"], "range"),
    (["2025-01-03", "09:00", "S1", "ES1", "ES", "ten", "3", "Long", "Win", "2", "10"], "target"),
    (["2025-01-03", "09:00", "S1", "ES1", "ES", "10", "3", "Long", "", "2", "10"], "missing result"),
    # 09:00 of 2025-01-03: every earlier row for it was rejected, so this one is not a duplicate
    (["2025-01-03", "09:00", "S1", "ES1", "ES", "10", "5", "Long", "BREAK_EVEN", "2", "0"], None),
    # the same slot again with other values: a duplicate too
    (["2025-01-03", "09:00", "S1", "ES1", "ES", "10", "6", "Long", "Win", "2", "0"], "duplicate"),
]


def test_bad_rows_are_rejected_with_file_line_and_reason(tmp_path: Path):
    path = write_csv(tmp_path / "bad.csv", [row for row, _ in BAD_CSV])
    batch = read_day_events([path], CONFIG)
    expected = [(i + 2, words) for i, (_, words) in enumerate(BAD_CSV) if words]  # header is line 1
    assert [(r.line, r.source) for r in batch.rejects] == [(line, str(path)) for line, _ in expected]
    for reject, (_, words) in zip(batch.rejects, expected):
        assert words in reject.reason, (reject.line, reject.reason)
        assert reject.raw  # the original row, for the rejects file
    # the good rows of the same days still go through
    assert summary(batch.events) == [("ES1", "2025-01-02", {"07:30": "Win"}),
                                     ("ES1", "2025-01-03", {"09:00": "BE"})]
    assert batch.events[1].slots["09:00"].peak == 5.0  # the first of the two 09:00 rows


def test_duplicate_rows_are_rejected_in_every_format(tmp_path: Path):
    rows = ROWS + [ROWS[1]]  # ES1 2025-01-02 07:30 once more
    for path in (write_csv(tmp_path / "d.csv", rows), write_parquet(tmp_path / "d.parquet", rows),
                 write_jsonl_rows(tmp_path / "d.jsonl", rows)):
        batch = read_day_events([path], CONFIG)
        assert summary(batch.events) == EXPECTED_DAYS
        assert [(r.line, r.stream, r.date) for r in batch.rejects] == [(len(rows) + (path.suffix == ".csv"),
                                                                         "ES1", "2025-01-02")]
        assert "duplicate" in batch.rejects[0].reason


def test_the_same_day_twice_as_whole_events_or_rows_is_rejected(tmp_path: Path):
    # The first to arrive wins; the other is rejected, naming its stream and date.
    whole = write_jsonl_events(tmp_path / "w.jsonl", ROWS)
    rows = write_csv(tmp_path / "r.csv", ROWS[:2])  # ES1 2025-01-06 07:30, ES1 2025-01-02 07:30
    batch = read_day_events([whole, rows], CONFIG)
    assert summary(batch.events) == EXPECTED_DAYS
    assert [(r.source, r.line, r.stream, r.date) for r in batch.rejects] == [
        (str(rows), 2, "ES1", "2025-01-06"), (str(rows), 3, "ES1", "2025-01-02")]
    assert all("duplicate" in r.reason for r in batch.rejects)
    batch = read_day_events([rows, whole], CONFIG)
    # whole events are written per (stream, date) in first-row order: ES1 01-06 is line 1,
    # ES1 01-02 line 2
    assert [(r.source, r.line, r.stream, r.date) for r in batch.rejects] == [
        (str(whole), 1, "ES1", "2025-01-06"), (str(whole), 2, "ES1", "2025-01-02")]
    assert all("duplicate" in r.reason for r in batch.rejects)
    assert summary(batch.events)[0] == ("ES1", "2025-01-02", {"07:30": "Win"})


def test_jsonl_bad_lines_are_rejected(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    good = {"Date": "2025-01-02", "Time": "07:30", "Stream": "ES1", "Result": "Win", "Peak": 12}
    path.write_text("\n".join([
        json.dumps(good),
        "{not json",
        "[1, 2]",
        json.dumps({**good, "Time": "08:00", "Peak": "high"}),
        json.dumps({"stream": "ES1", "date": "2025-01-03", "slots": {"07:30": {"result": "Won"}}}),
        json.dumps({**good, "Time": "09:00", "Result": "Loss", "Peak": -3}),
    ]) + "\n")
    batch = read_day_events([path], CONFIG)
    assert summary(batch.events) == [("ES1", "2025-01-02", {"07:30": "Win"})]
    reasons = {r.line: r.reason for r in batch.rejects}
    assert sorted(reasons) == [2, 3, 4, 5, 6]
    assert "JSON" in reasons[2] and "object" in reasons[3] and "peak" in reasons[4]
    assert "bad result" in reasons[5] and ">= 0" in reasons[6]


def test_parquet_bad_rows_are_rejected_by_row_number(tmp_path: Path):
    rows = [list(r) for r in ROWS]
    rows[2][8] = "Maybe"  # row 3: ES1 2025-01-02 08:00
    rows[4][6] = -1.0  # row 5: NQ2 2025-01-02 09:30
    batch = read_day_events([write_parquet(tmp_path / "p.parquet", rows)], CONFIG)
    assert [(r.line, r.stream, r.date) for r in batch.rejects] == [(3, "ES1", "2025-01-02"), (5, "NQ2", "2025-01-02")]
    assert summary(batch.events)[0] == ("ES1", "2025-01-02", {"07:30": "Win", "09:00": "BE"})
    assert summary(batch.events)[1] == ("NQ2", "2025-01-02", {"10:00": "NoTrade", "10:30": "Win"})


def test_a_file_without_required_columns_is_refused(tmp_path: Path):
    path = tmp_path / "x.csv"
    path.write_text("Date,Time,Result\n2025-01-02,07:30,Win\n")
    with pytest.raises(SourceError, match="stream"):
        read_day_events([path], CONFIG)


# --- sequencer replay ------------------------------------------------------------------------


def replay(*args) -> int:
    return main(["replay", *map(str, args)])


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def checkpoint_docs(folder: Path) -> dict[str, dict]:
    """Checkpoint files by name, without saved_at (the only field that depends on the clock)."""
    docs = {}
    for path in sorted(folder.glob("state_*.json")):
        doc = json.loads(path.read_text())
        doc.pop("saved_at")
        docs[path.name] = doc
    return docs


def test_replay_writes_decisions_rejects_and_checkpoints(tmp_path: Path, capsys):
    data = write_csv(tmp_path / "in.csv", ROWS + [["2025-01-03", "09:00", "S1", "ES1", "ES", 10, 1, "L", "Nope", 1, 1]])
    out, state = tmp_path / "out", tmp_path / "state"
    assert replay(data, "--out", out, "--state-dir", state) == 0
    assert "5 applied" in capsys.readouterr().out
    with (out / "decisions.csv").open(newline="") as handle:
        assert next(csv.reader(handle)) == DECISION_COLUMNS
    rows = read_csv(out / "decisions.csv")
    assert [(r["stream"], r["date"]) for r in rows] == [(s, d) for s, d, _ in EXPECTED_DAYS]
    assert all(ISO_DATE.match(r["date"]) for r in rows)
    by_key = {(r["stream"], r["date"]): r for r in rows}
    # ES1 2025-01-02: traded 07:30 Win peak 12.5; sums 07:30 1, 08:00 -2, 09:00 0; stay; warm-up
    r = by_key["ES1", "2025-01-02"]
    assert (r["traded_slot"], r["result"], float(r["peak"]), r["next_slot"]) == ("07:30", "Win", 12.5, "07:30")
    assert json.loads(r["slot_sums"]) == {"07:30": 1, "08:00": -2, "09:00": 0}
    assert r["rolling_median"] == "" and float(r["next_target"]) == 10 and r["days_at_level"] == "1"
    # its trade: 07:30's recorded profit 10.0 points x ES's 50 $/point
    assert (r["traded"], float(r["profit"]), float(r["profit_usd"])) == ("True", 10.0, 500.0)
    # ES1 2025-01-03: traded 07:30 Loss; sums 07:30 [1,-2] -1, 08:00 [-2,1] -1, 09:00 [0] 0
    # -> 09:00 (0 > -1)
    r = by_key["ES1", "2025-01-03"]
    assert (r["result"], r["next_slot"]) == ("Loss", "09:00")
    assert r["time_change"].lower() == "true"
    # NQ2 2025-01-02: traded 09:30 Loss; sums 09:30 -2, 10:00 0, 10:30 1, 11:00 0 -> 10:30
    assert by_key["NQ2", "2025-01-02"]["next_slot"] == "10:30"
    # traded 09:30 Loss, -50.5 points x NQ's 10 $/point
    assert float(by_key["NQ2", "2025-01-02"]["profit_usd"]) == -505.0
    # NQ2 2025-01-03: 10:30 has no row -> result and peak empty, stay at 10:30
    r = by_key["NQ2", "2025-01-03"]
    assert (r["traded_slot"], r["result"], r["peak"], r["next_slot"]) == ("10:30", "", "", "10:30")
    assert (r["traded"], float(r["profit"]), float(r["profit_usd"])) == ("False", 0.0, 0.0)   # no outcome
    assert r["time_change"].lower() == "false"
    # ES1 2025-01-06: traded 09:00, no row for it
    assert (by_key["ES1", "2025-01-06"]["traded_slot"], by_key["ES1", "2025-01-06"]["result"]) == ("09:00", "")

    rejects = read_csv(out / "rejects.csv")
    assert [(r["source"], r["line"], r["stream"], r["date"]) for r in rejects] == [
        (str(data), "12", "ES1", "2025-01-03")]
    assert "bad result" in rejects[0]["reason"] and "Nope" in rejects[0]["raw"]

    assert sorted(os.listdir(state)) == ["state_ES_ES1.json", "state_NQ_NQ2.json"]
    es1 = json.loads((state / "state_ES_ES1.json").read_text())
    assert (es1["last_processed_date"], es1["events_applied"], es1["current_time"]) == ("2025-01-06", 3, "09:00")
    # peaks of the traded slot: 12.5 (01-02, 07:30), 7.75 (01-03, 07:30); none on 01-06
    assert es1["rolling_median_window"] == [12.5, 7.75]


def long_rows(days: int = 40):
    """A deterministic data set with enough days for full windows: ES1 and NQ2."""
    import random

    rng = random.Random(20250102)
    rows = []
    results = ["Win", "Loss", "BE", "NoTrade", "TIME"]
    for i in range(days):
        date = f"2025-{1 + i // 28:02d}-{1 + i % 28:02d}"
        for stream, session, instrument, base, slots in (
                ("ES1", "S1", "ES", 10.0, ["07:30", "08:00", "09:00"]),
                ("NQ2", "S2", "NQ", 50.0, ["09:30", "10:00", "10:30", "11:00"])):
            for slot in slots:
                if rng.random() < 0.1:
                    continue  # a missing slot
                peak = None if rng.random() < 0.2 else round(rng.uniform(0.3, 3.0) * base, 2)
                rows.append([date, slot, session, stream, instrument, base, peak, "Long",
                             rng.choice(results), 1.0, 0.0])
    return rows


def test_resume_continues_where_until_stopped(tmp_path: Path):
    data = write_csv(tmp_path / "in.csv", long_rows())
    full_out, full_state = tmp_path / "full", tmp_path / "full_state"
    assert replay(data, "--out", full_out, "--state-dir", full_state) == 0
    part_out, rest_out, state = tmp_path / "part", tmp_path / "rest", tmp_path / "state"
    until = "2025-01-20"
    assert replay(data, "--out", part_out, "--state-dir", state, "--until", until) == 0
    part = read_csv(part_out / "decisions.csv")
    assert part and max(r["date"] for r in part) <= until
    assert {json.loads((state / n).read_text())["last_processed_date"] for n in os.listdir(state)} == {until}
    assert replay(data, "--out", rest_out, "--state-dir", state, "--resume") == 0
    full = read_csv(full_out / "decisions.csv")
    rest = read_csv(rest_out / "decisions.csv")
    assert rest == [r for r in full if r["date"] > until]
    assert part + rest == full
    assert checkpoint_docs(state) == checkpoint_docs(full_state)
    # resuming again with nothing new applies nothing and changes no state
    assert replay(data, "--out", tmp_path / "again", "--state-dir", state, "--resume") == 0
    assert read_csv(tmp_path / "again" / "decisions.csv") == []
    assert checkpoint_docs(state) == checkpoint_docs(full_state)


def test_until_stops_at_the_date(tmp_path: Path, capsys):
    data = write_csv(tmp_path / "in.csv", ROWS)
    assert replay(data, "--out", tmp_path / "o", "--state-dir", tmp_path / "s", "--until", "2025-01-02") == 0
    assert "3 after --until" in capsys.readouterr().out
    rows = read_csv(tmp_path / "o" / "decisions.csv")
    assert [(r["stream"], r["date"]) for r in rows] == [("ES1", "2025-01-02"), ("NQ2", "2025-01-02")]
    assert replay(data, "--out", tmp_path / "o", "--state-dir", tmp_path / "s", "--until", "someday") == 2


def test_resume_refuses_a_corrupt_checkpoint_and_writes_nothing(tmp_path: Path, capsys):
    data = write_csv(tmp_path / "in.csv", ROWS)
    state = tmp_path / "s"
    assert replay(data, "--out", tmp_path / "o", "--state-dir", state, "--until", "2025-01-02") == 0
    bad = state / "state_ES_ES1.json"
    bad.write_text(bad.read_text()[:100])
    capsys.readouterr()
    assert replay(data, "--out", tmp_path / "o2", "--state-dir", state, "--resume") == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
    assert bad.read_text().startswith("{")  # left for the operator to inspect


def test_a_config_file_gets_its_own_checkpoint_folder(tmp_path: Path):
    data = write_csv(tmp_path / "in.csv", long_rows(20))
    config_file = tmp_path / "fast.toml"
    config_file.write_text('depth = 5\nmedian_position = 3\ntarget_mode = "median_ladder"\n')
    state = tmp_path / "s"
    assert replay(data, "--out", tmp_path / "o1", "--state-dir", state) == 0
    assert replay(data, "--out", tmp_path / "o2", "--state-dir", state, "--config", config_file) == 0
    fast = SequencerConfig(depth=5, median_position=3, target_mode="median_ladder")
    default_doc = json.loads((state / "state_ES_ES1.json").read_text())
    fast_doc = json.loads((state / "fast" / "state_ES_ES1.json").read_text())
    assert default_doc["config_id"] == CONFIG.config_id and fast_doc["config_id"] == fast.config_id
    assert len(fast_doc["rolling_median_window"]) <= 5 < len(default_doc["rolling_median_window"])
    # --config-name picks the folder
    assert replay(data, "--out", tmp_path / "o3", "--state-dir", state, "--config", config_file,
                  "--config-name", "other") == 0
    assert checkpoint_docs(state / "other") == checkpoint_docs(state / "fast")


# --- sequencer state ---------------------------------------------------------------------------


def test_state_list_show_clear(tmp_path: Path, capsys):
    state = tmp_path / "s"
    assert replay(write_csv(tmp_path / "in.csv", ROWS), "--out", tmp_path / "o", "--state-dir", state) == 0
    capsys.readouterr()

    assert main(["state", "list", "--state-dir", str(state), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(r["stream"], r["last_processed_date"], r["events_applied"], r["current_time"]) for r in listing] == [
        ("ES1", "2025-01-06", 3, "09:00"), ("NQ2", "2025-01-03", 2, "10:30")]

    assert main(["state", "list", "--state-dir", str(state)]) == 0
    text = capsys.readouterr().out
    assert "ES1" in text and "NQ2" in text and "2025-01-06" in text

    assert main(["state", "show", "ES1", "--state-dir", str(state), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads((state / "state_ES_ES1.json").read_text())

    assert main(["state", "show", "NQ2", "--state-dir", str(state)]) == 0
    text = capsys.readouterr().out
    assert "NQ2" in text and "10:30" in text

    assert main(["state", "show", "YM1", "--state-dir", str(state)]) == 1
    capsys.readouterr()

    # a refused file is reported, not hidden, and the exit status says so (2), as state show's does
    (state / "state_NQ_NQ2.json").write_text("{")
    assert main(["state", "list", "--state-dir", str(state), "--json"]) == 2
    captured = capsys.readouterr()
    listing = json.loads(captured.out)
    assert "error" in listing[1] and listing[1]["file"].endswith("state_NQ_NQ2.json")
    assert "1 of 2 checkpoint files" in captured.err and "refused" in captured.err
    assert main(["state", "list", "--state-dir", str(state)]) == 2
    captured = capsys.readouterr()
    assert "REFUSED" in captured.out and "state_NQ_NQ2.json" in captured.out and "refused" in captured.err
    assert main(["state", "show", "NQ2", "--state-dir", str(state)]) == 2
    assert "state_NQ_NQ2.json" in capsys.readouterr().err

    assert main(["state", "clear", "ES1", "--state-dir", str(state)]) == 0
    assert sorted(os.listdir(state)) == ["state_NQ_NQ2.json"]
    assert main(["state", "clear", "ES1", "--state-dir", str(state)]) == 1
    assert main(["state", "clear", "--all", "--state-dir", str(state)]) == 0
    assert os.listdir(state) == []
    capsys.readouterr()
    assert main(["state", "list", "--state-dir", str(state), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


# --- the real data set ------------------------------------------------------------------------

BASES = {"ES": (10, 5), "NQ": (50, 25), "YM": (100, 50), "CL": (0.5, 0.25), "GC": (5, 2.5), "NG": (0.05, 0.025)}
SESSIONS = {"S1": ["07:30", "08:00", "09:00"], "S2": ["09:30", "10:00", "10:30", "11:00"]}
SCORE = {"win": 1, "loss": -2, "be": 0, "break_even": 0, "breakeven": 0,
         "notrade": 0, "no_trade": 0, "no trade": 0, "time": 0}


def independent_fold(folder: Path, depth=13, position=7, promotion_days=2, pct=400) -> dict[str, dict]:
    """SPEC 5 written again from the text, on plain dicts, with the default config."""
    days = defaultdict(dict)  # (stream, date) -> {slot: (result, peak)}
    for path in sorted(folder.glob("*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                peak = float(row["Peak"]) if row["Peak"] else None
                days[row["Stream"], row["Date"]][row["Time"]] = (row["Result"].lower(), peak)
    states = {}
    for stream, date in sorted(days, key=lambda key: (key[1], key[0])):
        instrument, session = stream[:-1], "S" + stream[-1]
        base, increment = BASES[instrument]
        cap = round(base * pct / 100, 10)
        rungs = [round(base * (1 + 0.5 * i), 10) for i in range(15)]
        slots = SESSIONS[session]
        old = states.get(stream) or {
            "last_processed_date": None, "events_applied": 0, "rolling_median_window": [],
            "time_slot_histories": {s: [] for s in slots}, "current_time": slots[0],
            "rolling_median_target": base, "median_ladder_target": base,
            "median_ladder_current_step": 0, "median_ladder_days_at_level": 0, "no_trade_next": False}
        s = copy.deepcopy(old)
        outcomes = days[stream, date]
        traded = s["current_time"]
        for slot in slots:
            if slot in outcomes:
                s["time_slot_histories"][slot] = (s["time_slot_histories"][slot] + [SCORE[outcomes[slot][0]]])[-depth:]
        sums = {slot: sum(h) for slot, h in s["time_slot_histories"].items()}
        if traded in outcomes and outcomes[traded][0] == "loss":
            others = [slot for slot in slots if slot != traded]
            best = max(others, key=lambda slot: (sums[slot], -slots.index(slot)))
            if sums[best] > sums[traded]:
                s["current_time"] = best
        peak = outcomes[traded][1] if traded in outcomes else None
        if peak is not None:
            s["rolling_median_window"] = (s["rolling_median_window"] + [peak])[-depth:]
            window = s["rolling_median_window"]
            if len(window) < depth:
                s["rolling_median_target"] = s["median_ladder_target"] = base
                s["median_ladder_days_at_level"] += 1
                s["no_trade_next"] = False
            else:
                m = sorted(window)[position - 1]
                floored = round(math.floor(round(m / increment, 9)) * increment, 10)
                s["rolling_median_target"] = min(max(floored, base), cap)
                desired = max([i for i, r in enumerate(rungs) if m >= r], default=0)
                step = s["median_ladder_current_step"]
                if desired > step:
                    if s["median_ladder_days_at_level"] >= promotion_days:
                        s["median_ladder_current_step"] += 1
                        s["median_ladder_days_at_level"] = 1
                    else:
                        s["median_ladder_days_at_level"] += 1
                elif desired < step:
                    s["median_ladder_current_step"] = desired
                    s["median_ladder_days_at_level"] = 1
                else:
                    s["median_ladder_days_at_level"] += 1
                s["median_ladder_target"] = min(rungs[s["median_ladder_current_step"]], cap)
                s["no_trade_next"] = m < base
        s["last_processed_date"] = date
        s["events_applied"] += 1
        states[stream] = s
    for s in states.values():
        s["median_ladder_window"] = s["rolling_median_window"]
        s["current_target"] = s["rolling_median_target"]  # target_mode rolling_median
    return states


def sequencer_command() -> list[str]:
    script = Path(sys.executable).with_name("sequencer")
    if script.exists():
        return [str(script)]
    found = shutil.which("sequencer")
    assert found, "the sequencer console script is not installed"
    return [found]


def test_real_data_replay_matches_an_independent_fold(tmp_path: Path):
    assert sorted(p.name for p in SAMPLE.glob("*.csv")) == [
        "trades_CL.csv", "trades_ES.csv", "trades_NQ.csv", "trades_YM.csv"]
    out, state = tmp_path / "out", tmp_path / "state"
    done = subprocess.run(
        [*sequencer_command(), "replay", str(SAMPLE), "--out", str(out), "--state-dir", str(state)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "15926 applied" in done.stdout and "0 rejected" in done.stdout
    decisions = read_csv(out / "decisions.csv")
    assert len(decisions) == 15926
    assert read_csv(out / "rejects.csv") == []
    files = sorted(os.listdir(state))
    assert files == [f"state_{s[:2]}_{s}.json" for s in
                     ("CL1", "CL2", "ES1", "ES2", "NQ1", "NQ2", "YM1", "YM2")]
    assert all(ISO_DATE.match(r["date"]) for r in decisions)
    assert sum(1 for r in decisions if r["time_change"].lower() == "true") > 0

    expected = independent_fold(SAMPLE)
    assert sorted(expected) == ["CL1", "CL2", "ES1", "ES2", "NQ1", "NQ2", "YM1", "YM2"]
    assert sum(s["events_applied"] for s in expected.values()) == 15926
    for stream, mine in expected.items():
        doc = json.loads((state / f"state_{stream[:2]}_{stream}.json").read_text())
        theirs = {key: doc[key] for key in mine}
        assert theirs == mine, stream
        # and the decisions agree with the state on the stream's last day
        last = [r for r in decisions if r["stream"] == stream][-1]
        assert (last["date"], last["next_slot"]) == (mine["last_processed_date"], mine["current_time"])
        assert float(last["next_target"]) == mine["current_target"]


def test_decisions_csv_writes_slot_sums_as_compact_json(tmp_path: Path):
    from types import MappingProxyType

    from sequencer.domain import Decision
    from sequencer.adapters.files.record_files import write_decisions_csv

    def decision(sums: dict) -> Decision:
        return Decision("ES1", "ES", "2025-01-02", "07:30", "Win", 1.0, MappingProxyType(sums), False,
                        "07:30", None, 10.0, 10.0, 0, 1, 10.0, False, "why", "why, again", True, 1.0, 50.0)

    layouts = [{"07:30": 1, "08:00": -2, "09:00": 0}, {"07:30": -26, "08:00": 13, "09:00": -1},
               {"09:30": 0, "10:00": 0, "10:30": 5, "11:00": -4}, {}, {'a"b': 3}]
    path = tmp_path / "d.csv"
    assert write_decisions_csv(path, [decision(s) for s in layouts]) == len(layouts)
    cells = [row["slot_sums"] for row in read_csv(path)]
    assert cells == [json.dumps(s, separators=(",", ":")) for s in layouts]
    assert [json.loads(c) for c in cells] == layouts


def test_files_saved_with_a_byte_order_mark_read_like_the_others(tmp_path: Path):
    plain_csv, plain_jsonl = write_csv(tmp_path / "a.csv", ROWS), write_jsonl_rows(tmp_path / "a.jsonl", ROWS)
    for path in (plain_csv, plain_jsonl):
        marked = tmp_path / f"bom{path.suffix}"
        marked.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
        batch = read_day_events([marked], CONFIG)
        assert batch.rejects == [] and summary(batch.events) == EXPECTED_DAYS, path.suffix
