"""A clean long-format CSV file read as columns, by Arrow's C++ reader.

``sources`` reads a CSV row by row in Python: about 3 µs a row, 1.2 s of
the 420,000 rows of the 120,000-event workload. Most big files are clean:
no quotes, no bad row. Such a file is parsed here by ``pyarrow.csv`` (on
every core) and checked as columns: each distinct stream/instrument/session/
time, date, result and direction through the very checks the row reader
applies (``_DayGrouper``), the numbers by range over whole columns. Only
then are its day events built, in bulk.

Anything else gives up on the whole file before it changes anything, and
the row reader reads it instead, so every reject keeps its reason, line and
order: a quote, NUL or lone carriage return anywhere; a row of another
width; a cell the checks refuse or that is not a plain number Arrow and
``float`` read alike; two rows of one (stream, date, slot); a day an
earlier file also has. ``tests/unit/test_csv_columns.py`` holds both
readers equal on random files, clean and hostile.

Importing pyarrow costs about 0.1 s, which only a big file repays
(``COLUMNS_MIN_BYTES``; docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import csv
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sequencer.domain import InvalidEvent, SlotOutcome
from sequencer.domain.events import DIRECTION_MAX_CHARS, NUMBER_LIMIT, RESULT_NAMES

if TYPE_CHECKING:
    from sequencer.adapters.files.sources import _DayGrouper

#: Below this many bytes of CSV in a run, the row reader is faster than
#: importing pyarrow and reading by columns (measured: docs/benchmarks.md).
COLUMNS_MIN_BYTES = 6 << 20

#: The number columns and the range each must lie in (SPEC 3: peak and range
#: non-negative); the bounds are the row reader's (``NUMBER_LIMIT``).
_NUMBER_RANGES = {"peak": (0.0, NUMBER_LIMIT), "target": (-NUMBER_LIMIT, NUMBER_LIMIT),
                  "range": (0.0, NUMBER_LIMIT), "profit": (-NUMBER_LIMIT, NUMBER_LIMIT)}

def read_clean_csv(path: Path, data: bytes, index: dict[str, int], width: int,
                   grouper: "_DayGrouper") -> bool:
    """Add the rows of the CSV file ``data`` (header included) to ``grouper``;
    False, with nothing added, if the row reader must read it instead.

    ``index`` maps the lower-cased column names of the header to positions
    and ``width`` is the header's width (``sources._column_index``).
    """
    if b'"' in data or b"\0" in data or data.count(b"\r") != data.count(b"\r\n"):
        return False
    # Without quotes a cell cannot hold the csv module's field size limit's
    # worth of text on a line that is not also that long.
    if len(data) > csv.field_size_limit() and _longest_line(data) > csv.field_size_limit():
        return False
    table = _parse(data, index, width)
    if table is None or table.num_rows == 0:
        return table is not None and _no_rows(data)
    columns = _checked_columns(table, index, grouper)
    if columns is None:
        return False
    return _add_days(table, columns, grouper)


def _longest_line(data: bytes) -> int:
    return max(map(len, data.split(b"\n")))


def _no_rows(data: bytes) -> bool:
    # A header alone (maybe with blank lines): the row reader adds nothing either.
    return not any(line.strip(b"\r") for line in data.split(b"\n")[1:])


def _parse(data: bytes, index: dict[str, int], width: int) -> Any:
    """The rows below the header as Arrow columns f0, f1, ... (numbers as float64,
    an empty number cell null), or None if Arrow refuses the file (a row of
    another width, bad UTF-8, a number cell it cannot read).

    Arrow reads a number cell as ``float`` does, or refuses it (property-tested
    in tests/unit/test_csv_columns.py); what it refuses and ``float`` reads
    ("1_0") sends the file to the row reader.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    numbers = {index[name] for name in _NUMBER_RANGES if name in index}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(skip_rows=1, autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.float64() if i in numbers else pa.string() for i in range(width)},
                null_values=[""], strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return table if table.num_columns == width else None


class _Columns:
    """A clean file's rows in (date, stream, slot) order, as Python lists."""

    def __init__(self) -> None:
        self.outcomes: list[SlotOutcome] = []
        self.slots: list[str] = []
        self.day_starts: list[int] = []  # the first row of each (stream, date)
        self.day_keys: list[tuple[str, str]] = []


def _codes(column: Any) -> tuple[Any, list[Any]]:
    """``column`` as (int64 codes, the distinct values they index)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = pc.dictionary_encode(column)
    return encoded.indices.cast(pa.int64()), encoded.dictionary.to_pylist()


def _checked_columns(table: Any, index: dict[str, int], grouper: "_DayGrouper") -> _Columns | None:
    """The rows, every distinct cell checked as the row reader checks it; None
    if any check fails (the row reader then says which row and why)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def column(name: str) -> Any:
        return table.column(index[name]) if name in index else None

    try:
        # Each distinct (stream, instrument, session, time) is checked once, as
        # one code: the four columns' codes combined.
        combined, cells = None, []
        for name in ("stream", "instrument", "session", "time"):
            found = column(name)
            if found is None:
                codes, values = pa.array([0] * table.num_rows, pa.int64()), [""]
            else:
                codes, values = _codes(found)
            combined = codes if combined is None else pc.add(pc.multiply(combined, len(values)), codes)
            cells.append(values)
        key_codes, key_values = _codes(combined)
        keys = []
        for value in key_values:
            parts = []
            for values in reversed(cells):
                value, at = divmod(value, len(values))
                parts.append(values[at] or None)  # an empty cell reads as None, as in add_row
            time, session, instrument, stream = parts
            stream, _, session = grouper._stream(stream, instrument, session)
            keys.append((stream, grouper._slot(time, session), session))
        date_codes, date_cells = _codes(column("date"))
        dates = [grouper._date(cell or None) for cell in date_cells]
    except InvalidEvent:
        return None
    result_codes, result_cells = _codes(column("result"))
    results = [RESULT_NAMES.get(cell) for cell in result_cells]
    if None in results:
        return None
    direction_column = column("direction")
    if direction_column is None:
        direction_codes, directions = None, [None]
    else:
        direction_codes, direction_cells = _codes(direction_column)
        if any(len(cell) > DIRECTION_MAX_CHARS or not cell.isprintable() for cell in direction_cells):
            return None
        directions = [cell or None for cell in direction_cells]
    for name, (low, high) in _NUMBER_RANGES.items():
        found = column(name)
        # False for NaN too; null (an empty cell) is skipped.
        if found is not None and pc.all(pc.and_(pc.greater_equal(found, low), pc.less_equal(found, high))).as_py() is False:
            return None

    # Sort by (date, stream, slot in session order): a (stream, date) is then one
    # run of rows, each slot in its place; two rows of one slot sit side by side.
    streams = sorted({stream for stream, _, _ in keys})
    stream_rank = {stream: rank for rank, stream in enumerate(streams)}
    sessions = grouper.config.sessions
    width = max(len(slots) for slots in sessions.values())
    ordered_dates = sorted(set(dates))
    date_rank = {date: rank for rank, date in enumerate(ordered_dates)}
    key_rank = pa.array([stream_rank[stream] * width + sessions[session].index(slot)
                         for stream, slot, session in keys], pa.int64())
    row_key = pc.add(pc.multiply(pc.take(pa.array([date_rank[d] for d in dates], pa.int64()), date_codes),
                                 len(streams) * width),
                     pc.take(key_rank, key_codes))
    order = pc.sort_indices(row_key)
    row_key = pc.take(row_key, order)
    if table.num_rows > 1 and pc.any(pc.equal(row_key[1:], row_key[:-1])).as_py():
        return None  # a duplicate row: the row reader names the later one
    day = pc.divide(row_key, width)  # integer division: (date, stream)
    starts = [0] + [i + 1 for i in pc.indices_nonzero(pc.not_equal(day[1:], day[:-1])).to_pylist()]

    out = _Columns()
    sorted_keys = pc.take(key_codes, order).to_pylist()
    sorted_dates = pc.take(date_codes, order).to_pylist()
    out.day_keys = [(keys[sorted_keys[i]][0], dates[sorted_dates[i]]) for i in starts]
    out.day_starts = starts
    out.slots = [keys[code][1] for code in sorted_keys]
    numbers = [None if column(name) is None else pc.take(column(name), order).to_pylist()
               for name in ("peak", "target", "range", "profit")]
    peaks, targets, ranges, profits = (values if values is not None else repeat(None) for values in numbers)
    result_of = [results[code] for code in pc.take(result_codes, order).to_pylist()]
    direction_of = (repeat(None) if direction_codes is None
                    else [directions[code] for code in pc.take(direction_codes, order).to_pylist()])
    out.outcomes = list(map(tuple.__new__, repeat(SlotOutcome),
                            zip(result_of, peaks, targets, direction_of, ranges, profits)))
    return out


def _add_days(table: Any, columns: _Columns, grouper: "_DayGrouper") -> bool:
    """Add the file's days to ``grouper``; False (nothing added) if an earlier
    file has one of them: the row reader says which rows are duplicates."""
    days = grouper.days
    if (days or grouper.whole) and any(key in days or key in grouper.whole for key in columns.day_keys):
        return False
    outcomes, slots = columns.outcomes, columns.slots
    ends = columns.day_starts[1:] + [len(outcomes)]
    for key, start, end in zip(columns.day_keys, columns.day_starts, ends):
        days[key] = dict(zip(slots[start:end], outcomes[start:end]))
    in_order = grouper.in_session_order
    for key in columns.day_keys:
        in_order[key] = len(days[key])
    grouper.rows += table.num_rows
    return True
