"""decisions.csv: the writer's template rows are byte for byte what csv.writer writes."""

from __future__ import annotations

import csv
import io
import json
from types import MappingProxyType

from hypothesis import given, settings, strategies as st

from sequencer.adapters.files.record_files import DecisionCsvWriter, read_decision_file
from sequencer.domain import DECISION_FIELDS, Decision

# any text, the characters csv quotes and '%' (the templates' own) made likely
TEXT = st.text(st.sampled_from('a1:,"\r\n% -') | st.characters(exclude_categories=("Cs",)), max_size=12)
FLOAT = st.floats(allow_nan=False)
SLOTS = st.lists(st.sampled_from(["07:30", "08:00", "09:00", "10:30"]) | TEXT, min_size=1, max_size=4, unique=True)


@st.composite
def decisions(draw, layouts):
    stream, instrument, slots = draw(st.sampled_from(layouts))
    sums = MappingProxyType({slot: draw(st.integers(-26, 13)) for slot in slots})
    return Decision(
        stream=stream, instrument=instrument, date=draw(st.sampled_from(["2024-01-02", "1980-12-31"]) | TEXT),
        traded_slot=draw(st.sampled_from(slots)), result=draw(st.none() | st.sampled_from(["Win", "Loss"]) | TEXT),
        peak=draw(st.none() | FLOAT), slot_sums=sums, time_change=draw(st.booleans()),
        next_slot=draw(st.sampled_from(slots)), rolling_median=draw(st.none() | FLOAT),
        rolling_median_target=draw(FLOAT), median_ladder_target=draw(FLOAT), ladder_step=draw(st.integers(0, 14)),
        days_at_level=draw(st.integers(0, 10**6)), next_target=draw(FLOAT), no_trade_next=draw(st.booleans()),
        time_reason=draw(TEXT), target_reason=draw(TEXT), traded=draw(st.booleans()), profit=draw(FLOAT),
        profit_usd=draw(FLOAT))


def csv_writer_bytes(rows: list[Decision]) -> str:
    """The independent oracle: csv.writer over each decision, slot_sums as compact JSON, null as ''."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(DECISION_FIELDS)
    for decision in rows:
        row = ["" if value is None else value for value in decision]
        row[6] = json.dumps(dict(decision.slot_sums), separators=(",", ":"))
        writer.writerow(row)
    return out.getvalue()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TEXT.filter(bool), TEXT, SLOTS), min_size=1, max_size=3).flatmap(
    lambda layouts: st.lists(decisions(layouts), max_size=8)))
def test_rows_are_csv_writers_bytes(rows: list[Decision]) -> None:
    out = io.StringIO()
    with DecisionCsvWriter(out, lengths=True) as writer:
        writer.BATCH_ROWS = 3  # several batches in one example
        for decision in rows:
            writer.write(decision)
    expected = csv_writer_bytes(rows)
    assert out.getvalue() == expected
    assert writer.count == len(rows)
    # each row's length in UTF-8 bytes (a split replay cuts its part by them)
    header = len(csv_writer_bytes([]))
    assert writer.lengths == [len(csv_writer_bytes([d])[header:].encode()) for d in rows]


def test_a_written_file_reads_back_equal(tmp_path) -> None:
    sums = MappingProxyType({"07:30": -2, "08:00": 1, "09:00": 0})
    first = Decision("ES1", "ES", "2024-01-02", "07:30", "Loss", 18.25, sums, True, "08:00", None, 10.0, 10.0, 0, 1,
                     10.0, False, "Loss at 07:30 (sum -2): switch to 08:00 (sum 1)", 'median 12.0, "ladder" 10.0',
                     True, -10.0, -500.0)
    second = first._replace(date="2024-01-03", result=None, peak=None, traded=False, profit=0.0, profit_usd=0.0)
    path = tmp_path / "decisions.csv"
    with path.open("w", newline="", encoding="utf-8") as handle, DecisionCsvWriter(handle) as writer:
        writer.write(first)
        writer.write(second)
    assert read_decision_file(path).decisions == [first, second]


def test_a_file_saved_again_by_a_spreadsheet_reads_as_written(tmp_path) -> None:
    # Excel, LibreOffice and R write booleans TRUE/FALSE, Spark true/false, and
    # Excel saves "CSV UTF-8" with a byte order mark and CRLF: every row was
    # skipped ("time_change 'TRUE' is not True or False") and the report was empty.
    sums = MappingProxyType({"07:30": -2, "08:00": 1})
    first = Decision("ES1", "ES", "2024-01-02", "07:30", "Loss", 18.25, sums, True, "08:00", None, 10.0, 10.0, 0, 1,
                     10.0, False, "switch", "warm-up", True, -10.0, -500.0)
    second = first._replace(date="2024-01-03", time_change=False, no_trade_next=True, traded=False)
    path = tmp_path / "decisions.csv"
    with path.open("w", newline="", encoding="utf-8") as handle, DecisionCsvWriter(handle) as writer:
        writer.write(first)
        writer.write(second)
    text = path.read_text(encoding="utf-8")
    for spelling in (str.upper, str.lower):
        saved = text.replace(",True,", f",{spelling('True')},").replace(",False,", f",{spelling('False')},")
        saved = saved.replace(",True\n", f",{spelling('True')}\n").replace(",False\n", f",{spelling('False')}\n")
        assert "True" not in saved.split("\n", 1)[1] and "False" not in saved.split("\n", 1)[1]
        resaved = tmp_path / "resaved.csv"
        resaved.write_bytes(b"\xef\xbb\xbf" + saved.replace("\n", "\r\n").encode())
        read = read_decision_file(resaved)
        assert read.problems == [] and read.decisions == [first, second]


def test_a_flag_that_is_no_boolean_is_still_named(tmp_path) -> None:
    path = tmp_path / "decisions.csv"
    row = ["ES1", "ES", "2024-01-02", "07:30", "Win", "", '{"07:30":1}', "yes", "07:30", "", "10.0", "10.0",
           "0", "1", "10.0", "False", "", "", "True", "0.0", "0.0"]
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([DECISION_FIELDS, row])
    assert read_decision_file(path).problems == [f"{path}:2: time_change 'yes' is not True or False"]


def _two_decisions():
    sums = MappingProxyType({"07:30": -2, "08:00": 1})
    first = Decision("ES1", "ES", "2024-01-02", "07:30", "Loss", 18.25, sums, True, "08:00", None, 10.0, 10.0, 0, 1,
                     10.0, False, "switch", "warm-up", True, -10.0, -500.0)
    return [first, first._replace(date="2024-01-03", time_change=False, traded=False, profit=0.0, profit_usd=0.0)]


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(len(DECISION_FIELDS))), st.lists(st.sampled_from(["note", "tag", "", "Profit"]),
                                                               max_size=3, unique=True), st.booleans())
def test_a_file_with_its_columns_moved_or_others_added_reads_as_written(tmp_path_factory, order, extra, bad_row):
    # A decisions.csv rearranged in a spreadsheet, or written by another tool
    # with columns of its own: before, refused as "columns in another order"
    # (also when only a column was added). Both readers find columns by name.
    from sequencer.adapters.files.record_files import read_decision_columns

    folder = tmp_path_factory.mktemp("moved")
    decisions = _two_decisions()
    plain, moved = folder / "plain.csv", folder / "moved.csv"
    with plain.open("w", newline="", encoding="utf-8") as handle, DecisionCsvWriter(handle) as writer:
        for decision in decisions:
            writer.write(decision)
    rows = list(csv.reader(plain.open(newline="", encoding="utf-8")))
    with moved.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerows([[row[i] for i in order] + [f"x{n}" if rows.index(row) else name
                                                  for n, name in enumerate(extra)] for row in rows])
        if bad_row:  # the columns reader gives way to the row reader, which names it
            out.writerow(["ES1"])
    read = read_decision_file(moved)
    assert read.decisions == decisions
    assert read.problems == ([f"{moved}:4: 1 cells, expected {len(DECISION_FIELDS) + len(extra)}"] if bad_row else [])
    assert read_decision_columns([moved], slot_sums=True) == read_decision_columns([plain], slot_sums=True)[:1] + (
        read.problems,)


def test_a_column_named_twice_or_missing_is_refused_by_name(tmp_path) -> None:
    import pytest

    from sequencer.adapters.files.record_files import DecisionFileError, read_decision_columns

    row = ["ES1", "ES", "2024-01-02", "07:30", "Win", "", '{"07:30":1}', "False", "07:30", "", "10.0", "10.0",
           "0", "1", "10.0", "False", "", "", "True", "1.0", "50.0"]
    twice, missing = tmp_path / "twice.csv", tmp_path / "missing.csv"
    with twice.open("w", newline="") as handle:
        csv.writer(handle).writerows([list(DECISION_FIELDS) + ["profit"], row + ["2.0"]])
    with missing.open("w", newline="") as handle:
        csv.writer(handle).writerows([DECISION_FIELDS[:-1], row[:-1]])
    for read in (read_decision_file, lambda path: read_decision_columns([path])):
        with pytest.raises(DecisionFileError, match="column profit appears twice; which one holds the data is unknown"):
            read(twice)
        with pytest.raises(DecisionFileError, match="missing columns profit_usd$"):
            read(missing)
