"""The columns of long-format files as other tools write them. Two columns (or
a JSON row's two keys) that the reader matches to one field, as joins and hand
edits make them: refused by name, never read as whichever came last. JSON rows
converted from a CSV: read as that CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from sequencer.adapters.files.sources import SourceError, read_day_events
from sequencer.domain import SequencerConfig

CONFIG = SequencerConfig()
HEADER = "Date,Time,Session,Stream,Instrument,Target,Peak,Direction,Result,Range,Profit"
ROW = "2025-01-02,07:30,S1,ES1,ES,10.0,12.5,Long,Win,9.5,10.0"


@pytest.mark.parametrize("header, names", [
    (HEADER.replace("Profit", "Peak"), "'Peak' and 'Peak' are the same column peak"),
    (HEADER.replace("Profit", " peak "), "'Peak' and ' peak ' are the same column peak"),
    (HEADER.replace("Direction", "DATE"), "'Date' and 'DATE' are the same column date"),
])
def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path, header, names):
    path = tmp_path / "doubled.csv"
    path.write_text(f"{header}\n{ROW}\n")
    with pytest.raises(SourceError) as refused:
        read_day_events([path], CONFIG)
    assert str(refused.value) == (f"{path}: columns {names}; which one holds the data is unknown: "
                                  "rename or drop the others")


def test_two_columns_the_reader_does_not_read_may_share_a_name(tmp_path: Path):
    path = tmp_path / "notes.csv"
    path.write_text(f"{HEADER},Note,note\n{ROW},a,b\n")
    batch = read_day_events([path], CONFIG)
    assert batch.rejects == [] and batch.events[0].slots["07:30"].peak == 12.5


def test_a_parquet_file_with_two_spellings_of_a_column_is_refused(tmp_path: Path):
    frame = pd.DataFrame([ROW.split(",") + ["99"]], columns=HEADER.split(",") + ["peak"])
    frame.to_parquet(tmp_path / "doubled.parquet")
    with pytest.raises(SourceError, match="columns 'Peak' and 'peak' are the same column peak"):
        read_day_events([tmp_path / "doubled.parquet"], CONFIG)


def test_a_json_row_with_a_key_twice_is_rejected_and_the_others_read(tmp_path: Path):
    good = dict(zip(HEADER.split(","), ROW.split(",")))
    second = dict(good, Date="2025-01-03")
    path = tmp_path / "rows.jsonl"
    lines = [
        json.dumps(good)[:-1] + ', "Result": "Loss"}',  # the key twice: json.loads keeps "Loss"
        json.dumps(dict(second, peak="99")),  # "Peak" and "peak"
        json.dumps(dict(second, Date="2025-01-06")),
    ]
    path.write_text("\n".join(lines) + "\n")
    batch = read_day_events([path], CONFIG)
    assert [(r.line, r.reason) for r in batch.rejects] == [
        (1, "keys 'Result' and 'Result' are the same column result"),
        (2, "keys 'Peak' and 'peak' are the same column peak"),
    ]
    assert [(e.date, e.slots["07:30"].result) for e in batch.events] == [("2025-01-06", "Win")]


def test_json_rows_converted_from_a_csv_read_as_that_csv(tmp_path: Path):
    # A CSV -> JSON lines converter (Miller, csvkit) writes every cell as a string
    # and an empty cell as "": the desk's files leave Peak empty on many rows.
    header = HEADER.split(",")
    rows = [ROW, "2025-01-02,08:00,S1,ES1,ES,10.0,,,Loss,,-10.0", "2025-01-03,09:00,S1,ES1,ES,,,Short,BE,8.0,"]
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("\n".join([HEADER, *rows]) + "\n")
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(dict(zip(header, row.split(",")))) + "\n" for row in rows))
    batch = read_day_events([jsonl], CONFIG)
    assert batch.rejects == []
    assert batch.events == read_day_events([csv_path], CONFIG).events
    # By hand: the empty cells are absent values.
    assert batch.events[0].slots["08:00"] == (("Loss", None, 10.0, None, None, -10.0))
