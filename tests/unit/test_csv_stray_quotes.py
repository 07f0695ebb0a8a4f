"""A stray quote in a CSV file (a cell written `"Long`, an inch mark) costs its own
row, not every row after it. The csv module reads from such a quote to the next
one, or to the end of the file, as one cell: the run used to fold the rows before
it and report one reject for all the rest."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from sequencer.adapters.files.sources import StreamPartition, read_day_events
from sequencer.domain import SequencerConfig

CONFIG = SequencerConfig()
HEADER = "Date,Time,Session,Stream,Instrument,Target,Peak,Direction,Result,Range,Profit"
SLOTS = ("07:30", "08:00", "09:00")


def rows(days: int) -> list[str]:
    """Three rows a day, of ES1 and of NQ1 on alternate days (a split replay's two
    processes own one each)."""
    return [f"2024-01-{day + 1:02d},{slot},S1,{name}1,{name},10.0,{12 + day + i},Long,"
            f"{'Win' if day % 3 else 'Loss'},9.5,10.0"
            for day in range(days) for name in ["ES" if day % 2 else "NQ"] for i, slot in enumerate(SLOTS)]


def write(path: Path, lines: list[str], end: str = "\n", last_end: bool = True) -> Path:
    path.write_bytes((end.join([HEADER, *lines]) + (end if last_end else "")).encode())
    return path


def with_quote(row: str, cell: int) -> str:
    cells = row.split(",")
    cells[cell] = '"' + cells[cell]
    return ",".join(cells)


def test_a_quote_that_is_never_closed_costs_its_row_only(tmp_path: Path):
    good = rows(20)
    lines = list(good)
    lines[3] = with_quote(lines[3], 7)  # line 5 of the file: 2024-01-02 07:30, direction "Long
    batch = read_day_events([write(tmp_path / "q.csv", lines)], CONFIG)
    expected = read_day_events([write(tmp_path / "e.csv", good[:3] + good[4:])], CONFIG)
    assert [(r.line, r.stream) for r in batch.rejects] == [(5, None)]
    assert batch.rejects[0].reason == ("a quote opened on this line runs to line 61: its row is refused and "
                                       "lines 6-61 are read on their own")
    assert batch.rejects[0].raw == lines[3]
    assert batch.events == expected.events and len(batch.events) == 20


def test_two_stray_quotes_cost_their_two_rows(tmp_path: Path):
    good = rows(10)
    lines = list(good)
    lines[2] = with_quote(lines[2], 7)
    lines[12] = with_quote(lines[12], 9)  # closes the first one's cell, opens none
    batch = read_day_events([write(tmp_path / "q.csv", lines, "\r\n")], CONFIG)
    expected = read_day_events([write(tmp_path / "e.csv", [r for i, r in enumerate(good) if i not in (2, 12)])],
                               CONFIG)
    assert [r.line for r in batch.rejects] == [4, 14]
    assert batch.events == expected.events


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 29), st.integers(0, 10)), min_size=1, max_size=3,
                unique_by=lambda t: t[0]),
       st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_stray_quotes_anywhere_cost_at_most_their_own_rows(tmp_path: Path, quotes, end, last_end):
    good = rows(10)
    lines = list(good)
    for row, cell in quotes:
        lines[row] = with_quote(lines[row], cell)
    batch = read_day_events([write(tmp_path / "q.csv", lines, end, last_end)], CONFIG)
    reference = read_day_events([write(tmp_path / "e.csv", good)], CONFIG)
    outcomes = {(e.stream, e.date, slot): o for e in reference.events for slot, o in e.slots.items()}
    read = {(e.stream, e.date, slot): o for e in batch.events for slot, o in e.slots.items()}
    quoted = {row for row, _ in quotes}
    # Every row without a quote is read; a row is read only as written; a
    # reject is a quoted row's (two quotes the csv module pairs up make one).
    unquoted = {(r.split(",")[3], r.split(",")[0], r.split(",")[1]) for i, r in enumerate(good) if i not in quoted}
    assert unquoted <= set(read)
    assert all(outcomes[key] == outcome for key, outcome in read.items())
    assert len(batch.rejects) <= len(quotes) and {r.line - 2 for r in batch.rejects} <= quoted
    # A split replay's partitions read the same rows and rejects between them.
    parts = [read_day_events([tmp_path / "q.csv"], CONFIG, StreamPartition(i, 2)) for i in range(2)]
    assert sorted(e for p in parts for e in p.events) == sorted(batch.events)
    assert sorted(r.line for p in parts for r in p.rejects) == sorted(r.line for r in batch.rejects)
