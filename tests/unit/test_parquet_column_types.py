"""Parquet files as other tools write them: the column types pandas and pyarrow use
besides float64 and plain strings. Each must read as the same rows written as CSV
(the row reader's text cells are the reference: what the user wrote, independent
of any column type)."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sequencer.adapters.files.sources import SourceError, read_day_events
from sequencer.domain import SequencerConfig, SlotOutcome

CONFIG = SequencerConfig()
HEADER = ["Date", "Time", "Session", "Stream", "Instrument", "Target", "Peak", "Direction", "Result",
          "Range", "Profit"]
# Missing cells in every optional column, on different rows.
ROWS = [
    ["2025-01-02", "07:30", "S1", "ES1", "ES", 10.0, 12.5, "Long", "Win", 9.5, 10.0],
    ["2025-01-02", "08:00", "S1", "ES1", "ES", 10.0, None, None, "Loss", 11.0, -10.25],
    ["2025-01-02", "09:00", "S1", "ES1", "ES", None, 20.0, "Short", "BE", None, None],
    ["2025-01-03", "07:30", "S1", "NG1", "NG", 0.05, 0.175, "Long", "Win", 0.1, 0.05],
    ["2025-01-03", "08:00", "S1", "NG1", "NG", 0.05, 0.325, None, "Loss", None, -0.05],
]


def csv_events(tmp_path: Path, rows=ROWS):
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
    batch = read_day_events([path], CONFIG)
    assert batch.rejects == []
    return batch.events


def parquet_batch(tmp_path: Path, table: pa.Table):
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path)
    return read_day_events([path], CONFIG)


def frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=HEADER)


def test_pandas_nullable_dtypes_read_as_the_csv(tmp_path: Path):
    # convert_dtypes gives string, Float64 and Int64 columns whose missing cells
    # are pd.NA; pandas writes its dtypes into the file and reads them back.
    nullable = frame().convert_dtypes()
    assert str(nullable["Peak"].dtype) == "Float64" and str(nullable["Direction"].dtype) == "string"
    nullable.to_parquet(tmp_path / "rows.parquet")
    batch = read_day_events([tmp_path / "rows.parquet"], CONFIG)
    assert batch.rejects == []
    assert batch.events == csv_events(tmp_path)
    # By hand: a missing direction is no direction, not the text "<NA>".
    assert batch.events[0].slots["08:00"] == SlotOutcome("Loss", None, 10.0, None, 11.0, -10.25)


def test_integer_columns_with_missing_cells_read_as_the_csv(tmp_path: Path):
    rows = [[*row[:5], None if row[5] is None else int(row[5] * 100), *row[6:]] for row in ROWS]
    table = pa.Table.from_pandas(pd.DataFrame(rows, columns=HEADER).astype({"Target": "Int64"}),
                                 preserve_index=False)
    assert table.schema.field("Target").type == pa.int64()
    batch = parquet_batch(tmp_path, table)
    assert batch.rejects == []
    assert batch.events == csv_events(tmp_path, rows)


def test_float32_peaks_read_as_the_decimals_written(tmp_path: Path):
    # 0.175 as a float32 is 0.17499999701976776: floored to NG's increment 0.025
    # that is 0.15, not 0.175, so the same data gave another target than its CSV.
    table = pa.Table.from_pandas(frame(), preserve_index=False)
    for name in ("Peak", "Target", "Range", "Profit"):
        table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(pa.float32()))
    batch = parquet_batch(tmp_path, table)
    assert batch.rejects == []
    assert batch.events[1].slots["07:30"].peak == 0.175
    assert batch.events == csv_events(tmp_path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False), min_size=1, max_size=8),
       st.sampled_from([np.float32, np.float16]))
def test_any_short_decimal_in_a_narrow_float_column_reads_as_written(tmp_path: Path, peaks, width):
    # A decimal of at most 6 significant digits survives float32 (FLT_DIG = 6),
    # and of at most 3 float16: such a column reads as the text a CSV would hold.
    digits = 6 if width is np.float32 else 3
    peaks = [Decimal(format(p, f".{digits}g")) for p in peaks]
    if width is np.float16:
        peaks = [p for p in peaks if p <= 60000]
    rows = [[f"2025-01-{i + 1:02d}", "07:30", "S1", "ES1", "ES", None, str(p), None, "Win", None, None]
            for i, p in enumerate(peaks)]
    frame_ = pd.DataFrame(rows, columns=HEADER)
    frame_["Peak"] = frame_["Peak"].astype(float).astype(width)
    batch = read_day_events([_write(tmp_path, frame_)], CONFIG)
    assert [e.slots["07:30"].peak for e in batch.events] == [float(p) for p in peaks]


def _write(tmp_path: Path, frame_: pd.DataFrame) -> Path:
    path = tmp_path / "narrow.parquet"
    frame_.to_parquet(path)
    return path


def test_decimal_columns_read_as_the_csv(tmp_path: Path):
    # Databases and Spark write prices as decimal(p, s); pyarrow reads them as Decimal.
    table = pa.Table.from_pandas(frame(), preserve_index=False)
    for name in ("Peak", "Target", "Range", "Profit"):
        table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(pa.decimal128(12, 4)))
    batch = parquet_batch(tmp_path, table)
    assert batch.rejects == []
    assert batch.events == csv_events(tmp_path)


def test_a_missing_timestamp_date_is_a_missing_date(tmp_path: Path):
    dates = [dt.datetime.fromisoformat(row[0]) for row in ROWS]
    dates[1] = None  # NaT once read
    table = pa.Table.from_pandas(frame(), preserve_index=False)
    table = table.set_column(0, "Date", pa.array(dates, pa.timestamp("us")))
    batch = parquet_batch(tmp_path, table)
    assert [(r.line, r.reason) for r in batch.rejects] == [(2, "missing or malformed date: None")]
    assert len(batch.events) == 2 and "08:00" not in batch.events[0].slots


@pytest.mark.parametrize("kind", ["date32", "timestamp with a time zone", "dictionary-encoded strings"])
def test_other_date_and_category_types_read_as_the_csv(tmp_path: Path, kind):
    # Written by pyarrow alone (no pandas metadata), as Polars and Spark write them.
    table = pa.Table.from_pandas(frame(), preserve_index=False).replace_schema_metadata(None)
    dates = pa.array([dt.datetime.fromisoformat(row[0]) for row in ROWS], pa.timestamp("us"))
    if kind == "date32":
        table = table.set_column(0, "Date", dates.cast(pa.date32()))
    elif kind == "timestamp with a time zone":
        table = table.set_column(0, "Date", dates.cast(pa.timestamp("ms", "UTC")))
    else:  # pandas categoricals
        for name in ("Stream", "Result", "Direction"):
            i = table.schema.get_field_index(name)
            table = table.set_column(i, name, table[name].dictionary_encode())
    batch = parquet_batch(tmp_path, table)
    assert batch.rejects == []
    assert batch.events == csv_events(tmp_path)


@pytest.mark.parametrize("index", [["Date"], ["Stream", "Date"]])
def test_columns_written_as_the_index_are_columns(tmp_path: Path, index):
    # frame.set_index("Date").to_parquet(...): pandas keeps the column in the file and
    # reads it back as the index; it was refused as "missing columns date".
    frame().set_index(index).to_parquet(tmp_path / "indexed.parquet")
    batch = read_day_events([tmp_path / "indexed.parquet"], CONFIG)
    assert batch.rejects == []
    assert batch.events == csv_events(tmp_path)


def test_a_filtered_frame_keeps_its_rows_numbered_by_position(tmp_path: Path):
    # An unnamed index (the rows left after a filter: 1, 3, 4) is no column;
    # a reject names the row by its place in the file.
    rows = [list(row) for row in ROWS]
    rows[3][8] = "Maybe"
    frame_ = pd.DataFrame(rows, columns=HEADER).iloc[[1, 3, 4]]
    frame_.to_parquet(tmp_path / "filtered.parquet")
    batch = read_day_events([tmp_path / "filtered.parquet"], CONFIG)
    assert [(r.line, r.stream, r.date) for r in batch.rejects] == [(2, "NG1", "2025-01-03")]
    assert [(e.stream, list(e.slots)) for e in batch.events] == [("ES1", ["08:00"]), ("NG1", ["08:00"])]


def test_an_index_and_a_column_of_one_name_are_refused(tmp_path: Path):
    indexed = frame().set_index(pd.Index([row[0] for row in ROWS], name="date"))
    indexed.to_parquet(tmp_path / "both.parquet")
    with pytest.raises(SourceError, match="columns 'date' and 'Date' are the same column date"):
        read_day_events([tmp_path / "both.parquet"], CONFIG)


@pytest.mark.parametrize("as_time", [
    lambda texts: pd.to_timedelta(texts + ":00"),  # pandas' duration; SQL TIME columns read so
    lambda texts: pd.to_datetime(texts, format="%H:%M"),  # a timestamp on 1900-01-01
    lambda texts: pd.to_datetime(texts, format="%H:%M").dt.time,  # datetime.time objects
])
def test_time_of_day_columns_of_other_types_read_as_the_csv(tmp_path: Path, as_time):
    frame_ = frame()
    frame_["Time"] = as_time(frame_["Time"])
    frame_.to_parquet(tmp_path / "times.parquet")
    batch = read_day_events([tmp_path / "times.parquet"], CONFIG)
    assert batch.rejects == []
    assert batch.events == csv_events(tmp_path)


def test_a_duration_that_is_no_time_of_day_is_rejected_as_written(tmp_path: Path):
    frame_ = frame().iloc[:2].copy()
    frame_["Time"] = pd.to_timedelta(["07:30:15", "1 days 07:30:00"])
    frame_.to_parquet(tmp_path / "times.parquet")
    batch = read_day_events([tmp_path / "times.parquet"], CONFIG)
    assert [r.reason for r in batch.rejects] == ["malformed slot time '07:30:15': expected HH:MM",
                                                 "malformed slot time '1 days 07:30:00': expected HH:MM"]


def test_empty_strings_of_a_text_frame_are_empty_cells(tmp_path: Path):
    # pd.read_csv(..., dtype=str, keep_default_na=False) keeps every cell as text
    # and an empty one as "": such a frame written to Parquet reads as its CSV.
    csv_events(tmp_path)  # writes rows.csv
    text = pd.read_csv(tmp_path / "rows.csv", dtype=str, keep_default_na=False)
    assert (text["Peak"] == "").any()
    text.to_parquet(tmp_path / "text.parquet")
    batch = read_day_events([tmp_path / "text.parquet"], CONFIG)
    assert batch.rejects == []
    assert batch.events == csv_events(tmp_path)
