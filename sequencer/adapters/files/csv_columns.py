"""A clean long-format CSV file read as columns, by Arrow's C++ reader.

``sources`` reads a CSV row by row in Python: about 3 µs a row, 1.2 s of
the 420,000 rows of the 120,000-event workload. Most big files are clean:
no quotes, no bad row. Such a file is parsed here by ``pyarrow.csv`` (on
every core) and checked as columns: each distinct stream/instrument/session/
time, date, result and direction through the very checks the row reader
applies (``_DayGrouper``), the numbers by range over whole columns. Only
then are its day events built, in bulk.

A row with a cell the checks refuse is left out of the columns and goes
through the row reader's ``add_row`` (``_DayGrouper.rejects_of_rows``),
which gives its reject: a refused cell makes a row's reason its own,
whatever came before it, and its line number is counted from the file's
newlines. Anything else gives up on the whole file before it changes
anything, and the row reader reads it instead, so every reject keeps its
reason, line and order: a quote, NUL or lone carriage return anywhere; a
line longer than the csv module's field size limit; a row of another width,
or a number cell Arrow does not read; two rows of one (stream, date, slot);
a day an earlier file also has; a file whose every row is refused.
``tests/unit/test_csv_columns.py`` holds both readers equal on random files,
clean and hostile.

Importing pyarrow (and numpy with it) costs about 0.2 s, which only a big
file repays (``COLUMNS_MIN_BYTES``; docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import csv
from itertools import repeat
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable

from sequencer.domain import DayEvent, InvalidEvent, SlotOutcome
from sequencer.domain.events import DIRECTION_MAX_CHARS, NUMBER_LIMIT, RESULT_NAMES

#: Below this many bytes of CSV in a run, the row reader is faster than
#: importing pyarrow and reading by columns (measured: docs/benchmarks.md).
COLUMNS_MIN_BYTES = 6 << 20

#: The number columns and the range each must lie in (SPEC 3: peak and range
#: non-negative); the bounds are the row reader's (``NUMBER_LIMIT``).
_NUMBER_RANGES = {"peak": (0.0, NUMBER_LIMIT), "target": (-NUMBER_LIMIT, NUMBER_LIMIT),
                  "range": (0.0, NUMBER_LIMIT), "profit": (-NUMBER_LIMIT, NUMBER_LIMIT)}


def read_clean_csv(path: Path, data: bytes, index: dict[str, int], width: int,
                   grouper: Any) -> bool:
    """Add the rows of the CSV file ``data`` (header included) to ``grouper``
    (a ``sources._DayGrouper``: typed ``Any`` here, as this module is imported
    by that one); False, with nothing added, if the row reader must read it instead.

    ``index`` maps the lower-cased column names of the header to positions
    and ``width`` is the header's width (``sources._column_index``).
    """
    if b'"' in data or b"\0" in data or _has_a_lone_carriage_return(data):
        return False
    table = _parse(data, index, width)  # (imports pyarrow, and numpy with it)
    # The row reader fails on a cell over the csv module's field size limit;
    # without quotes, only a line that long can hold one.
    if _may_hold_a_line_over(data, csv.field_size_limit()) and _longest_line(data) > csv.field_size_limit():
        return False
    if table is None or table.num_rows == 0:
        return table is not None and _no_rows(data)
    checked = _checked_columns(table, index, grouper)
    if checked is None:
        return False
    days, doubtful = checked
    rejects: list[Any] = []
    if len(doubtful):  # a few bad rows: their rejects from the row reader, the rest by columns
        rejects = grouper.rejects_of_rows(str(path), _lines_of_rows(data, doubtful), index)
        if rejects is None:
            return False
    if not grouper.add_column_days(days, table.num_rows - len(doubtful)):
        return False
    grouper.rejects.extend(rejects)
    grouper.rows += len(doubtful)
    return True


def _lines_of_rows(data: bytes, rows: Any) -> list[tuple[int, str]]:
    """(line number, text without its line end) of Arrow's rows ``rows`` of the
    CSV file ``data``: the header is line 1, and Arrow, like the row reader,
    skips empty lines (which the line numbers count)."""
    import numpy as np

    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
    starts = np.concatenate(([0], ends + 1))
    stops = np.append(ends, len(data))  # (the last line may have no line end)
    texts = stops - starts
    crlf = np.zeros(len(stops), bool)
    has_end = stops > starts
    crlf[has_end] = np.frombuffer(data, np.uint8)[stops[has_end] - 1] == ord("\r")
    texts = texts - crlf
    lines = np.flatnonzero(texts[1:] > 0) + 1  # the non-empty lines below the header: Arrow's rows
    found = lines[rows]
    return [(int(line) + 1, data[starts[line]:starts[line] + texts[line]].decode("utf-8"))
            for line in found.tolist()]


def _has_a_lone_carriage_return(data: bytes) -> bool:
    """Whether a ``\\r`` of ``data`` is not followed by ``\\n`` (a third of the
    time of counting both). By blocks of 1 MB into one reused mask: a mask of
    the whole file would be as many bytes of fresh memory, whose page faults
    cost more than the compare."""
    if b"\r" not in data:
        return False
    import numpy as np

    octets = np.frombuffer(data, np.uint8)
    if octets[-1] == ord("\r"):
        return True
    block = 1 << 20
    mask = np.empty(min(block, len(octets)), bool)
    for start in range(0, len(octets), block):
        part = octets[start:start + block]
        found = np.equal(part, ord("\r"), out=mask[:len(part)])
        after = np.flatnonzero(found) + (start + 1)  # (the last byte is no \r: each has a next one)
        if len(after) and not np.all(octets[after] == ord("\n")):
            return True
    return False


def _may_hold_a_line_over(data: bytes, limit: int) -> bool:
    """False when no line of ``data`` is longer than ``limit`` bytes, found
    cheaply: if every block of ``limit // 2`` bytes holds a newline, two
    newlines are never ``limit`` bytes apart (a ``find`` per block, each
    stopping at the block's first newline). True: ``_longest_line`` must say."""
    block = max(1, limit // 2)
    return any(data.find(b"\n", start, start + block) < 0 for start in range(0, len(data), block))


def _longest_line(data: bytes) -> int:
    import numpy as np

    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
    return int(np.diff(ends, prepend=-1, append=len(data)).max())


def _no_rows(data: bytes) -> bool:
    # A header alone (maybe with blank lines): the row reader adds nothing either.
    return not any(line.strip(b"\r") for line in data.split(b"\n")[1:])


def _parse(data: bytes, index: dict[str, int], width: int) -> Any:
    """The rows below the header as Arrow columns f0, f1, ..., or None if Arrow
    refuses the file (a row of another width, bad UTF-8, a number cell it
    cannot read). The columns checked by distinct value come dictionary-encoded
    (by the reader: ``pyarrow.compute`` would cost a quarter second to load),
    numbers as float64 (an empty cell null).

    Arrow reads a number cell as ``float`` does, or refuses it (property-tested
    in tests/unit/test_csv_columns.py); what it refuses and ``float`` reads
    ("1_0") sends the file to the row reader.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    numbers = {index[name] for name in _NUMBER_RANGES if name in index}
    coded = {index[name] for name in _CODED if name in index}
    types = {f"f{i}": pa.float64() if i in numbers else pa.dictionary(pa.int32(), pa.string()) if i in coded
             else pa.string() for i in range(width)}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(skip_rows=1, autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types=types, null_values=[""],
                                                 strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return table if table.num_columns == width else None


#: The text columns read as codes into their distinct values.
_CODED = ("stream", "instrument", "session", "time", "date", "result", "direction")


class ColumnDays:
    """The days of a file read by columns, checked, their events not built yet.

    Rows are in (date, stream, slot) order, as numpy arrays shared (copy-on-
    write) with the processes a split replay forks: each builds the events of
    its own streams only (``events``).
    """

    def __init__(self, streams: list[tuple[str, str, str]], dates: list[str], day_stream: Any, day_date: Any,
                 day_starts: Any, rows: dict[str, Any]) -> None:
        self.streams = streams          # (stream, instrument, session) by rank (stream names sorted)
        self.dates = dates              # ISO dates by rank (sorted)
        self.day_stream = day_stream    # each day's stream rank
        self.day_date = day_date        # each day's date rank
        self.day_starts = day_starts    # each day's first row, then the row count
        self.rows = rows                # per row: slot, result, direction (object arrays), numbers

    def __len__(self) -> int:
        return len(self.day_stream)

    def keys(self) -> list[tuple[str, str]]:
        """(stream, date) of each day, in order."""
        names = _objects([stream for stream, _, _ in self.streams])
        return list(zip(names[self.day_stream].tolist(), _objects(self.dates)[self.day_date].tolist()))

    def order_keys(self, days: Any) -> Any:
        """A number per day of ``days`` that sorts as its (date, stream)."""
        return self.day_date[days] * len(self.streams) + self.day_stream[days]

    def owned_days(self, owns: Callable[[str], bool] | None) -> Any:
        """The indices of the days of the streams ``owns`` (all if None), in order."""
        import numpy as np

        if owns is None:
            return np.arange(len(self))
        owned = np.array([owns(stream) for stream, _, _ in self.streams], bool)
        return np.flatnonzero(owned[self.day_stream])

    def _days(self, days: Any) -> tuple[Any, list[str], list[SlotOutcome]]:
        """Per day of ``days``: (stream rank, date rank, first row, end row) as
        lists zipped; and the slots and outcomes of those days' rows."""
        import numpy as np

        starts = self.day_starts[days]
        counts = self.day_starts[days + 1] - starts
        ends = np.cumsum(counts)
        if len(days) == len(self):  # every day: every row, as they are
            rows: Any = slice(None)
        else:  # the rows of the chosen days, in order: each day's run of rows, one after another
            rows = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - counts - starts, counts)
        columns = self.rows

        def cells(name: str) -> Any:
            found = columns.get(name)
            if found is None:
                return repeat(None)
            if isinstance(found, tuple):  # numbers: values, nulls
                values, nulls = found
                out = values[rows].astype(object)
                out[nulls[rows]] = None
                return out.tolist()
            return found[rows].tolist()

        outcomes = list(map(tuple.__new__, repeat(SlotOutcome),
                            zip(cells("result"), cells("peak"), cells("target"), cells("direction"),
                                cells("range"), cells("profit"))))
        spans = zip(self.day_stream[days].tolist(), self.day_date[days].tolist(), (ends - counts).tolist(),
                    ends.tolist())
        return spans, cells("slot"), outcomes

    def slot_days(self, days: Any) -> list[tuple[tuple[str, str], dict[str, SlotOutcome]]]:
        """((stream, date), {slot: outcome} in session order) of ``days``."""
        spans, slots, outcomes = self._days(days)
        streams, dates = self.streams, self.dates
        return [((streams[s][0], dates[d]), dict(zip(slots[a:b], outcomes[a:b]))) for s, d, a, b in spans]

    def events(self, owns: Callable[[str], bool] | None = None) -> tuple[list[DayEvent], Any]:
        """The day events of the streams ``owns`` (all if None) in (date, stream)
        order, and their ``order_keys``."""
        days = self.owned_days(owns)
        spans, slots, outcomes = self._days(days)
        streams, dates, proxy, new = self.streams, self.dates, MappingProxyType, tuple.__new__
        # tuple.__new__: the fields are checked; DayEvent's keyword __new__ is a Python call per event.
        events = [new(DayEvent, (*streams[s], dates[d], proxy(dict(zip(slots[a:b], outcomes[a:b])))))
                  for s, d, a, b in spans]
        return events, self.order_keys(days)


def _codes(column: Any) -> tuple[Any, list[Any]]:
    """A dictionary-encoded column as (int64 codes, the distinct values they index).

    Each chunk of the reader has its own dictionary; they are made one.
    """
    import numpy as np

    position: dict[Any, int] = {}
    parts = []
    for chunk in column.chunks:
        remap = np.array([position.setdefault(value, len(position)) for value in chunk.dictionary.to_pylist()],
                         dtype=np.int64)
        parts.append(remap[_buffer(chunk.indices, np.int32)] if len(remap) else np.zeros(len(chunk), np.int64))
    return np.concatenate(parts), list(position)


def _buffer(array: Any, dtype: Any) -> Any:
    """The values of a fixed-width Arrow array as numpy, read from its buffer
    (``to_numpy`` would import pandas: 0.3 s); a null's slot holds any value."""
    import numpy as np

    return np.frombuffer(array.buffers()[1], dtype)[array.offset:array.offset + len(array)]


def _numbers(column: Any) -> tuple[Any, Any]:
    """A float64 column as (values, null mask) numpy arrays."""
    import numpy as np

    values, nulls = [], []
    for chunk in column.chunks:
        values.append(_buffer(chunk, np.float64))
        if chunk.null_count:
            bits = np.unpackbits(np.frombuffer(chunk.buffers()[0], np.uint8), bitorder="little")
            nulls.append(bits[chunk.offset:chunk.offset + len(chunk)] == 0)
        else:
            nulls.append(np.zeros(len(chunk), bool))
    return np.concatenate(values), np.concatenate(nulls)


def _distinct(values: Any) -> tuple[Any, Any]:
    """(code per row, the distinct values) of an int64 array."""
    import numpy as np

    top = int(values.max()) + 1
    if top > 1 << 22:
        distinct, codes = np.unique(values, return_inverse=True)
        return codes, distinct
    seen = np.zeros(top, bool)
    seen[values] = True
    distinct = np.flatnonzero(seen)
    lookup = np.zeros(top, np.int64)
    lookup[distinct] = np.arange(len(distinct))
    return lookup[values], distinct


def _objects(values: list[Any]) -> Any:
    """``values`` as a numpy object array (indexing it gives back the same objects)."""
    import numpy as np

    out = np.empty(len(values), object)
    out[:] = values
    return out


def _checked_columns(table: Any, index: dict[str, int], grouper: Any) -> tuple[ColumnDays, Any] | None:
    """The rows, every distinct cell checked as the row reader checks it, and
    the rows (Arrow's row numbers, ascending) with a cell the checks refuse,
    left out of the days: the row reader says why (``read_clean_csv``). None
    if a check of the kept rows fails (a duplicate) or no row is kept."""
    import numpy as np

    rows = table.num_rows

    def column(name: str) -> Any:
        return table.column(index[name]) if name in index else None

    # Each distinct (stream, instrument, session, time) is checked once, as
    # one code: the four columns' codes combined. A refused one is None.
    combined, cells = np.zeros(rows, np.int64), []
    for name in ("stream", "instrument", "session", "time"):
        found = column(name)
        codes, values = (np.zeros(rows, np.int64), [""]) if found is None else _codes(found)
        combined = combined * len(values) + codes
        cells.append(values)
    key_codes, key_values = _distinct(combined)
    keys: list[tuple[str, str, str] | None] = []
    for value in key_values.tolist():
        parts = []
        for values in reversed(cells):
            value, at = divmod(value, len(values))
            parts.append(values[at] or None)  # an empty cell reads as None, as in add_row
        time, session, instrument, stream = parts
        try:
            stream, _, session = grouper._stream(stream, instrument, session)
            keys.append((stream, grouper._slot(time, session), session))
        except InvalidEvent:
            keys.append(None)
    date_codes, date_cells = _codes(column("date"))
    dates = _checked_dates(date_cells, grouper)
    result_codes, result_cells = _codes(column("result"))
    results = [RESULT_NAMES.get(cell) for cell in result_cells]
    refused = [_refused_codes(key_codes, [key is None for key in keys]),
               _refused_codes(date_codes, [date is None for date in dates]),
               _refused_codes(result_codes, [result is None for result in results])]
    direction_column = column("direction")
    if direction_column is not None:
        direction_codes, direction_cells = _codes(direction_column)
        refused.append(_refused_codes(direction_codes, [len(cell) > DIRECTION_MAX_CHARS or not cell.isprintable()
                                                        for cell in direction_cells]))
        directions = [cell or None for cell in direction_cells]
    numbers = {}
    for name, (low, high) in _NUMBER_RANGES.items():
        found = column(name)
        if found is not None:
            values, nulls = _numbers(found)
            with np.errstate(invalid="ignore"):
                refused.append(~(nulls | ((values >= low) & (values <= high))))  # (refused: NaN too)
            numbers[name] = values, nulls
    doubtful = np.zeros(rows, bool)
    for mask in refused:
        if mask is not None:
            doubtful |= mask
    kept = np.flatnonzero(~doubtful) if doubtful.any() else None
    if kept is not None:
        if len(kept) == 0:
            return None
        key_codes, date_codes, result_codes = key_codes[kept], date_codes[kept], result_codes[kept]
        if direction_column is not None:
            direction_codes = direction_codes[kept]
        numbers = {name: (values[kept], nulls[kept]) for name, (values, nulls) in numbers.items()}
        rows = len(kept)

    # Sort by (date, stream, slot in session order): a (stream, date) is then one
    # run of rows, each slot in its place; two rows of one slot sit side by side.
    # (A refused key or date is in no kept row: it ranks anywhere.)
    streams = sorted({key[0] for key in keys if key is not None})
    stream_rank = {stream: rank for rank, stream in enumerate(streams)}
    sessions = grouper.config.sessions
    width = max(len(slots) for slots in sessions.values())
    date_rank = {date: rank for rank, date in enumerate(sorted({date for date in dates if date is not None}))}
    key_rank = np.array([0 if key is None else stream_rank[key[0]] * width + sessions[key[2]].index(key[1])
                         for key in keys], np.int64)
    date_of_code = np.array([date_rank.get(date, 0) for date in dates], np.int64)
    row_key = date_of_code[date_codes] * (len(streams) * width) + key_rank[key_codes]
    order = np.argsort(row_key, kind="stable")
    row_key = row_key[order]
    if np.any(row_key[1:] == row_key[:-1]):
        return None  # a duplicate row: the row reader names the later one
    day = row_key // width  # (date, stream)
    starts = np.concatenate(([0], np.flatnonzero(day[1:] != day[:-1]) + 1))

    day_starts = np.concatenate((starts, [rows]))
    first = order[starts]
    names = grouper._names
    rows_of = {"slot": _objects([None if key is None else key[1] for key in keys])[key_codes[order]],
               "result": _objects(results)[result_codes[order]]}
    if direction_column is not None:
        rows_of["direction"] = _objects(directions)[direction_codes[order]]
    for name, (values, nulls) in numbers.items():
        rows_of[name] = values[order], nulls[order]
    key_stream = np.array([0 if key is None else stream_rank[key[0]] for key in keys], np.int64)
    days = ColumnDays([names[stream] for stream in streams], sorted(date_rank), key_stream[key_codes[first]],
                      date_of_code[date_codes[first]], day_starts, rows_of)
    return days, np.flatnonzero(doubtful)


def _checked_dates(cells: list[str], grouper: Any) -> list[str | None]:
    """Each distinct date cell as the row reader reads it (``_DayGrouper._date``),
    None where it refuses it.

    A cell that already is an ISO date ``YYYY-MM-DD`` (year 0001 on) not after
    the latest accepted date reads as itself (``parse_iso_date`` gives back
    such a date unchanged): those are checked at once, by numpy parsing them
    and writing them back the same (a long file has thousands of dates, each
    6 us through the row reader's checks). Any other cell, or all of them if
    numpy refuses one, goes through those checks.
    """
    import numpy as np

    latest = grouper.latest_date
    plain = [cell for cell in cells if len(cell) == 10 and cell[4] == "-" and cell[7] == "-"
             and cell[:4] >= "0001" and (latest is None or cell <= latest) and cell.isascii()]
    try:
        same = np.array(plain, "datetime64[D]").astype(str) == np.array(plain, str)
        accepted = set(np.array(plain, object)[same].tolist()) if plain else set()
    except ValueError:  # a cell numpy does not read as a date
        accepted = set()
    grouper._accepted_dates.update((cell, cell) for cell in accepted)  # (as _date does, for the row reader)
    return [cell if cell in accepted else _or_none(grouper._date, cell or None) for cell in cells]


def _or_none(check: Callable[[Any], Any], value: Any) -> Any:
    """``check(value)``, or None if it refuses the value."""
    try:
        return check(value)
    except InvalidEvent:
        return None


def _refused_codes(codes: Any, refused: list[bool]) -> Any:
    """Per row, whether its code's value is refused (None if none is)."""
    import numpy as np

    if not any(refused):
        return None
    return np.array(refused, bool)[codes]
