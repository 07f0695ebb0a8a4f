"""A big clean CSV read by columns (``csv_columns``) gives what the row reader gives.

The column reader either reads a whole file or declines it before changing
anything, and the row reader then reads it. So, on random files (clean ones,
which it reads, and ones with a bad cell, a quote, a duplicate row, a row of
another width, a day another file also has, which it must decline), the
events, their value types, the rejects and their order, and the row count are
those of every row through ``add_row`` (``test_csv_paths.generic_read``).
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sequencer.adapters.files import csv_columns, sources
from sequencer.adapters.files.sources import _DayGrouper, read_day_events

from tests.unit.test_csv_paths import CONFIG, HEADER, LATEST, cells, generic_read, typed

SESSION_SLOTS = {"S1": ["07:30", "08:00", "09:00"], "S2": ["09:30", "10:00", "10:30", "11:00"]}
STREAMS = ["ES1", "NQ2", "CL1", "GC2", "YM1", "NG2"]
numbers = st.one_of(st.just(""), st.integers(0, 4000).map(lambda n: str(n / 8)), st.sampled_from(
    ["0", "10", "1e3", "1E-2", "12.", ".5", "007.25", "999999999999"]))
signed = st.one_of(numbers, numbers.map(lambda text: "-" + text if text else text))


@st.composite
def clean_rows(draw) -> list[dict[str, str]]:
    """Distinct (stream, date, slot) rows, every cell valid, in random order."""
    streams = draw(st.lists(st.sampled_from(STREAMS), min_size=1, max_size=4, unique=True))
    dates = draw(st.lists(st.sampled_from([f"2025-0{m}-{d:02d}" for m in (1, 2, 3) for d in range(1, 29)]),
                          min_size=1, max_size=6, unique=True))
    keys = [(s, d, t) for s in streams for d in dates for t in SESSION_SLOTS["S" + s[-1]]]
    keys = draw(st.lists(st.sampled_from(keys), min_size=1, max_size=40, unique=True))
    rows = []
    for stream, date, time in keys:
        rows.append({"Date": date, "Time": time, "Session": draw(st.sampled_from(["S" + stream[-1], ""])),
                     "Stream": stream, "Instrument": draw(st.sampled_from([stream[:2], ""])),
                     "Target": draw(signed), "Peak": draw(numbers), "Direction": draw(st.sampled_from(
                         ["Long", "Short", "", "Lóng"])),
                     "Result": draw(st.sampled_from(["Win", "Loss", "BE", "NoTrade", "TIME", "loss", "WIN",
                                                     "be", "BREAK_EVEN"])),
                     "Range": draw(numbers), "Profit": draw(signed)})
    return rows


@st.composite
def csv_files(draw) -> tuple[list[str], list[list[str]], str]:
    """(header, rows, line end): clean rows, maybe some columns left out or moved,
    maybe a hostile change or two."""
    rows = draw(clean_rows())
    header = [name for name in HEADER if name in ("Date", "Time", "Stream", "Result") or draw(st.booleans())]
    header = draw(st.permutations(header))
    table = [[row[name] for name in header] for row in rows]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        at = draw(st.integers(0, len(table) - 1))
        change = draw(st.sampled_from(["cell", "cell", "duplicate", "short", "quote", "nul", "cr"]))
        if change == "cell":
            column = draw(st.integers(0, len(table[at]) - 1))  # (a row made short before has fewer)
            table[at][column] = draw(cells[header[column]])
        elif change == "duplicate":
            table.insert(draw(st.integers(0, len(table))), list(table[at]))
        elif change == "short":
            table[at] = table[at][:-1]
        elif change == "quote":
            table[at][-1] = table[at][-1] + ',"x"'
        elif change == "nul":
            table[at][0] = table[at][0] + "\0"
        else:
            table[at][0] = table[at][0] + "\r"
    return header, table, draw(st.sampled_from(["\n", "\r\n"]))


def write(path: Path, header: list[str], rows: list[list[str]], end: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        # csv.writer quotes what needs quoting (a comma, a quote, a line end):
        # the column reader must decline every such file.
        writer = csv.writer(handle, lineterminator=end)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def by_columns(paths: list[Path], monkeypatch) -> tuple:
    monkeypatch.setattr(sources, "COLUMNS_MIN_BYTES", 0)
    return typed(read_day_events(paths, CONFIG, latest_date=LATEST))


def by_rows(paths: list[Path]) -> tuple:
    """Every file's every row through ``add_row``, one grouper over all files."""
    if len(paths) == 1:
        return typed(generic_read(paths[0], LATEST))
    return typed(read_day_events(paths, CONFIG, latest_date=LATEST))  # (below the size: the row reader)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(csv_files())
def test_a_file_read_by_columns_equals_every_row_through_add_row(tmp_path_factory, monkeypatch, file):
    path = write(tmp_path_factory.mktemp("columns") / "rows.csv", *file)
    assert by_columns([path], monkeypatch) == by_rows([path])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(csv_files(), min_size=2, max_size=3))
def test_files_read_by_columns_equal_the_row_reader_across_files(tmp_path_factory, monkeypatch, files):
    # Days of one stream and date in two files: the second file goes to the row reader.
    folder = tmp_path_factory.mktemp("files")
    paths = [write(folder / f"in{i}.csv", *file) for i, file in enumerate(files)]
    rows = by_rows(paths)
    assert by_columns(paths, monkeypatch) == rows


def _grouper() -> _DayGrouper:
    return _DayGrouper(CONFIG, None, LATEST)


def _columns_take(path: Path) -> bool:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle))
    index = sources._column_index(path, header)
    return csv_columns.read_clean_csv(path, path.read_bytes(), index, len(header), _grouper())


@given(clean_rows(), st.sampled_from(["\n", "\r\n"]))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_column_reader_reads_every_clean_file_itself(tmp_path_factory, rows, end):
    path = write(tmp_path_factory.mktemp("clean") / "rows.csv", HEADER, [[r[n] for n in HEADER] for r in rows], end)
    assert _columns_take(path)


GOOD_ROWS = [f"2025-01-0{d},07:30,S1,ES1,ES,10,5,Long,Win,1,2" for d in (3, 6, 7)]


@pytest.mark.parametrize("bad", ["2025-01-02,07:30,S1,ES1,ES,10,1_0,Long,Win,1,2",    # float reads it, Arrow not
                                 "2025-01-02,07:30,S1,ES1,ES,10,5",                   # a short row
                                 '2025-01-02,07:30,S1,ES1,ES,10,5,"Long",Win,1,2',    # a quote
                                 "2025-01-03,07:30,S1,ES1,ES,10,5,Long,Win,1,2"])     # a duplicate
def test_the_column_reader_declines_a_file_with_one_bad_row(tmp_path: Path, bad: str):
    path = tmp_path / "rows.csv"
    path.write_text("\n".join([",".join(HEADER), *GOOD_ROWS, bad]) + "\n", encoding="utf-8")
    assert not _columns_take(path)
    path.write_text("\n".join([",".join(HEADER), *GOOD_ROWS]) + "\n", encoding="utf-8")
    assert _columns_take(path)


@pytest.mark.parametrize("bad", ["2025-01-02,07:30,S1,ES1,ES,10,5,Long,Winner,1,2",  # a result
                                 "2025-01-02,07:30,S1,ES1,ES,10,-5,Long,Win,1,2",     # a negative peak
                                 "2025-01-02,07:30,S1,ES1,ES,10,nan,Long,Win,1,2",    # not a number
                                 "2025-01-02,07:45,S1,ES1,ES,10,5,Long,Win,1,2",      # a slot
                                 "2025-01-02,07:30,S1,ES1,NQ,10,5,Long,Win,1,2",      # instrument vs stream
                                 "2099-01-02,07:30,S1,ES1,ES,10,5,Long,Win,1,2",      # the future
                                 "2025-01-02,07:30,S1,ES1,ES,10,5,Lo\x01ng,Win,1,2"])  # unprintable
def test_a_bad_cell_costs_its_row_a_reject_and_the_rest_is_read_by_columns(tmp_path: Path, monkeypatch, bad: str):
    # Blank lines, CRLF and no line end at the end: the reject's line number still counts every line.
    path = tmp_path / "rows.csv"
    text = "\r\n".join([",".join(HEADER), GOOD_ROWS[0], "", GOOD_ROWS[1], bad, "", "", GOOD_ROWS[2]])
    path.write_bytes(text.encode("utf-8"))
    assert _columns_take(path)
    events, rejects, rows = by_columns([path], monkeypatch)
    assert (events, rejects, rows) == by_rows([path])
    assert [(reject.source, reject.line) for reject in rejects] == [(str(path), 5)] and rows == 4 and len(events) == 3
    # a file of nothing but bad rows goes to the row reader whole
    path.write_text("\n".join([",".join(HEADER), bad]) + "\n", encoding="utf-8")
    assert not _columns_take(path)


def _arrow_number(text: str) -> float | None:
    """The number Arrow's CSV reader makes of ``text`` as ``csv_columns`` asks it; None if refused."""
    try:
        table = pacsv.read_csv(pa.py_buffer(f"x\n{text}\n".encode("utf-8", "surrogatepass")),
                               parse_options=pacsv.ParseOptions(quote_char=False, delimiter="\x1f"),
                               convert_options=pacsv.ConvertOptions(column_types={"x": pa.float64()},
                                                                    null_values=[""]))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):
        return None
    return table.column(0)[0].as_py() if table.num_rows else None


number_like = st.text(alphabet="0123456789.-+eEinfatyINFATY_ \t١", min_size=1, max_size=24)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(number_like, st.floats(allow_nan=True).map(repr), st.floats().map(lambda x: f"{x:.17e}"),
                 st.integers(-10**30, 10**30).map(str),
                 st.decimals(allow_nan=False, allow_infinity=False).map(str)))
def test_arrow_reads_a_number_cell_as_float_does_or_not_at_all(text):
    # The column reader trusts Arrow's numbers: where it reads a cell, ``float``
    # (the row reader's parser) must read the same value, bit for bit.
    assume("\n" not in text and "\r" not in text and "\x1f" not in text)
    arrow = _arrow_number(text)
    if arrow is None:
        return
    python = float(text)
    assert (math.isnan(arrow) and math.isnan(python)) or (arrow == python and
                                                           math.copysign(1, arrow) == math.copysign(1, python))


def test_the_synthetic_workload_reads_alike_by_columns_and_by_rows(tmp_path: Path, monkeypatch):
    """A few thousand rows of bench/synthetic.py's layout, the shape the column reader is for."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from synthetic import write_synthetic

    path = tmp_path / "synthetic.csv"
    write_synthetic(path, 300, ["ES", "NQ", "YM", "CL", "GC", "NG"], seed=random.Random(5).randrange(1000))
    assert _columns_take(path)
    monkeypatch.setattr(sources, "COLUMNS_MIN_BYTES", 0)
    columns = typed(read_day_events([path], CONFIG))
    monkeypatch.setattr(sources, "COLUMNS_MIN_BYTES", 1 << 60)
    assert columns == typed(read_day_events([path], CONFIG))


@pytest.mark.parametrize("threshold", [0, 1 << 60])  # by columns (declined: the line is too long), by rows
def test_a_cell_over_the_csv_field_limit_fails_its_file_by_name_and_line(tmp_path: Path, monkeypatch, threshold):
    # The csv module refuses a cell over its field size limit (131,072 characters):
    # a clear error naming the file and line, whichever reader was tried first.
    path = tmp_path / "long.csv"
    path.write_text(",".join(HEADER) + ",Note\n" + "2025-01-02,07:30,S1,ES1,ES,10,5,Long,Win,1,2,ok\n"
                    + "2025-01-03,07:30,S1,ES1,ES,10,5,Long,Win,1,2," + "x" * 200_000 + "\n", encoding="utf-8")
    monkeypatch.setattr(sources, "COLUMNS_MIN_BYTES", threshold)
    with pytest.raises(sources.SourceError, match=r"long\.csv: line 3: not readable as CSV \(field larger"):
        read_day_events([path], CONFIG, latest_date=LATEST)


date_like = st.one_of(
    st.dates().map(str), st.dates().map(lambda d: d.strftime("%Y-%m-%d ")), st.dates().map(lambda d: d.strftime("%Y%m%d")),
    st.text(alphabet="0123456789-+T: W٣", min_size=8, max_size=12),
    st.tuples(st.integers(0, 10000), st.integers(0, 13), st.integers(0, 32)).map(
        lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"))


@settings(max_examples=300, deadline=None)
@given(st.lists(date_like, max_size=20), st.sampled_from([LATEST, None, "2024-02-29"]))
def test_date_cells_checked_at_once_read_as_the_row_reader_reads_them(cells, latest):
    grouper = _DayGrouper(CONFIG, None, latest)
    expected = []
    for cell in cells:
        try:
            expected.append(_DayGrouper(CONFIG, None, latest)._date(cell or None))
        except sources.InvalidEvent:
            expected.append(None)
    assert csv_columns._checked_dates(cells, grouper) == expected


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40).map(lambda b: b.replace(b"x", b"\r").replace(b"y", b"\n")) |
       st.text(alphabet="a\r\n", max_size=40).map(str.encode))
def test_a_lone_carriage_return_is_found_as_counting_finds_it(data):
    assert csv_columns._has_a_lone_carriage_return(data) == (data.count(b"\r") != data.count(b"\r\n"))
