"""The CSV fast path and the generic row path give the same day events and rejects.

``_DayGrouper.read_csv`` inlines the common case and sends any other row to
``add_row``; both take their checks from the domain (``EventRules``). Fed the
same file, the fast path must find what ``add_row`` alone finds for every row:
the same events (values and their types), the same rejects in the same order,
the same row count.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequencer.domain import SequencerConfig

from tests.unit.test_typed_codecs import near_valid_events, valid_events
from sequencer.domain.events import latest_event_date
from sequencer.adapters.files.sources import (
    COLUMNS,
    _column_index,
    _csv_getter,
    _DayGrouper,
    _jsonl_rows,
    _short_row,
    read_day_events,
)

CONFIG = SequencerConfig()
LATEST = latest_event_date(dt.date(2025, 6, 30))
HEADER = ["Date", "Time", "Session", "Stream", "Instrument", "Target", "Peak", "Direction", "Result",
          "Range", "Profit"]

texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8)
number_cells = st.one_of(
    st.sampled_from(["", "0", "1.5", "-1", "12.25", "1e12", "1e13", "-0", "nan", "inf", "-inf", "1_0", " 2",
                     "abc", "1e400"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10**13, 10**13).map(str), texts)
cells = {
    "Date": st.one_of(st.sampled_from(["2025-01-15", "2025-01-16", "2025-07-01", "2025-07-02", "2025-02-30",
                                       "2025-01-15T00:00:00", "", "2025-1-5"]), texts),
    "Time": st.one_of(st.sampled_from(["07:30", "08:00", "09:00", "7:30", "09:30", "10:00", "25:00", ""]), texts),
    "Session": st.sampled_from(["S1", "S2", "", "S3"]),
    "Stream": st.one_of(st.sampled_from(["ES1", "NQ1", "ES2", "CL1", "XX1", "ES", "", "ES1 "]), texts),
    "Instrument": st.sampled_from(["ES", "NQ", "CL", "", "XX"]),
    "Target": number_cells, "Peak": number_cells, "Range": number_cells, "Profit": number_cells,
    "Direction": st.one_of(st.sampled_from(["Long", "Short", "", "x" * 33, "L\tong"]), texts),
    "Result": st.one_of(st.sampled_from(["Win", "Loss", "BE", "NoTrade", "TIME", "win", "LOSS", "be",
                                         "Break_Even", "no trade", " Win", "Tie", ""]), texts),
}


@st.composite
def csv_rows(draw):
    valid = st.fixed_dictionaries({
        "Date": st.sampled_from(["2025-01-15", "2025-01-16", "2025-01-17"]),
        "Time": st.sampled_from(["07:30", "08:00", "09:00"]), "Session": st.just("S1"),
        "Stream": st.sampled_from(["ES1", "NQ1"]), "Instrument": st.just(""),
        "Target": st.sampled_from(["", "10"]), "Peak": st.sampled_from(["", "0", "12.5", "40"]),
        "Direction": st.sampled_from(["Long", ""]), "Result": st.sampled_from(["Win", "Loss", "BE"]),
        "Range": st.sampled_from(["", "3.5"]), "Profit": st.sampled_from(["", "-20", "10.0"]),
    })
    rows = []
    for _ in range(draw(st.integers(1, 25))):
        row = draw(valid)
        for name in draw(st.lists(st.sampled_from(HEADER), max_size=2)):
            row[name] = draw(cells[name])
        if row["Instrument"] == "" and row["Stream"][:2] in ("ES", "NQ", "CL") and draw(st.booleans()):
            row["Instrument"] = row["Stream"][:2]
        values = [row[name] for name in HEADER]
        if not draw(st.integers(0, 19)):
            values = values[:draw(st.integers(1, len(values) - 1))]  # a short row
        rows.append(values)
    return rows


def generic_read(path: Path, latest: str):
    """Every row through ``add_row``, as the fast path sends the rows it does not handle."""
    grouper = _DayGrouper(CONFIG, None, latest)
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        positions = {c: _column_index(path, header).get(c) for c in COLUMNS}
        for values in reader:
            if not values:
                continue
            get = (_csv_getter(values, positions) if len(values) == len(header)
                   else _short_row(len(values), len(header)))
            grouper.add_row(str(path), reader.line_num, get, ",".join(values))
    return grouper.finish()


def typed(batch):
    events = [(e.stream, e.instrument, e.session, e.date,
               tuple((s, tuple((v, type(v)) for v in o)) for s, o in e.slots.items())) for e in batch.events]
    return events, batch.rejects, batch.rows


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(csv_rows())
def test_fast_csv_path_equals_the_generic_row_path(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    fast = read_day_events([path], CONFIG, latest_date=LATEST)
    assert typed(fast) == typed(generic_read(path, LATEST))


def _read_jsonl(path: Path, typed_lines: bool):
    """A JSON lines file through the grouper, its whole-event lines typed or as ``json`` parses them."""
    grouper = _DayGrouper(CONFIG, None, LATEST)
    for line, get, raw in _jsonl_rows(path, None, grouper.decoder if typed_lines else None):
        grouper.add_row(str(path), line, get, raw)
    return grouper.finish()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(near_valid_events(), valid_events()), min_size=1, max_size=8))
def test_whole_day_events_of_json_lines_read_typed_as_parsed(tmp_path_factory, docs):
    lines = []
    for doc in docs:
        try:
            lines.append(json.dumps(doc))
        except (TypeError, ValueError):
            continue
    path = tmp_path_factory.mktemp("jsonl") / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert typed(_read_jsonl(path, True)) == typed(_read_jsonl(path, False))
