"""File sources: long-format CSV, Parquet and JSON lines -> day events.

One row per (date, slot), grouped into one day event per (stream, date) and
returned in date order. A row that fails validation becomes a ``Reject`` with
its file, line and reason; the good rows of the same day still go through.
JSON lines may also hold whole day events (objects with ``slots``).
"""

from __future__ import annotations

import codecs
import csv
import datetime as _dt
import io
import itertools
import json
import logging
import mmap
import os
import re
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Iterator

from sequencer.adapters.files.csv_columns import COLUMNS_MIN_BYTES, ColumnDays, read_clean_csv
from sequencer.app.clock import latest_event_date_now
from sequencer.app.codecs import DEFAULT_MAX_EVENT_BYTES, EventDecoder, loads_json
from sequencer.domain import DayEvent, InvalidEvent, SequencerConfig, SlotOutcome, parse_day_event
from sequencer.domain.events import DIRECTION_MAX_CHARS, NUMBER_LIMIT, RESULT_NAMES

logger = logging.getLogger(__name__)

COLUMNS = ("date", "time", "session", "stream", "instrument", "target", "peak",
           "direction", "result", "range", "profit")
REQUIRED_COLUMNS = ("date", "time", "stream", "result")
SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")

#: Text files are decoded with ``surrogateescape``: a byte that is not UTF-8
#: becomes a lone surrogate (which strict UTF-8 never yields), so it costs
#: its row a reject instead of stopping the whole file.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class SourceError(InvalidEvent):
    """A whole input file cannot be read (missing column, unknown format)."""


@dataclass(frozen=True, slots=True)
class Reject:
    """An input row or event that was not applied, and why."""

    source: str
    line: int | None
    reason: str
    raw: str
    stream: str | None = None
    date: str | None = None


@dataclass(frozen=True)
class StreamPartition:
    """One of ``count`` disjoint sets of streams, as a Kafka topic splits its keys.

    Streams fold independently, so a replay may split them across processes.
    A stable hash of the stream name picks the owner; a row whose stream cannot
    be read at all belongs to partition 0, so every row is handled (and every
    reject written) exactly once over all partitions.
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index} of {self.count}")

    def owns(self, stream: Any) -> bool:
        if not isinstance(stream, str) or not stream:
            return self.index == 0
        return zlib.crc32(stream.encode("utf-8", "surrogatepass")) % self.count == self.index


@dataclass
class SourceBatch:
    """Everything read from a set of files: day events in date order, and rejects."""

    events: list[DayEvent] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    rows: int = 0


Row = tuple[int, Callable[[str], Any], str]


ByteCounter = Callable[[int], None]


def read_day_events(paths: Iterable[str | Path], config: SequencerConfig,
                    partition: StreamPartition | None = None,
                    on_bytes: ByteCounter | None = None,
                    latest_date: str | None = None) -> SourceBatch:
    """Read and group all files; events sorted by (date, stream).

    With ``partition``, only the rows (and rejects) of the streams it owns.
    ``on_bytes`` gets increments of the bytes read, for a progress bar.
    Rows dated after ``latest_date`` (default: today in UTC plus a day of
    grace) are rejected as in the future.
    """
    return _read(paths, config, partition, on_bytes, latest_date)[0].finish()


class SourceRead:
    """Files read and checked, their day events built when asked for: all of
    them, or a partition's (each process of a split replay builds its own)."""

    def __init__(self, grouper: "_DayGrouper", unread: list[Path]) -> None:
        self._grouper = grouper
        self.rejects: list[Reject] = grouper.rejects
        self.rows = grouper.rows
        self.count = grouper.count()  # day events
        #: The files left to the row reader (``read_sources(defer_rows=True)``).
        self.unread = unread

    def read_rest(self, partition: StreamPartition, on_bytes: ByteCounter | None = None) -> None:
        """Read the ``unread`` files, the rows of ``partition``'s streams only (the
        rows of a stream no partition can own: partition 0), on top of what was
        read; ``rows``, ``rejects`` and ``count`` then include them."""
        grouper = self._grouper
        grouper.partition, grouper.by_columns = partition, False
        for path in self.unread:
            grouper.read_file(path, on_bytes)
        self.unread = []
        self.rows, self.count = grouper.rows, grouper.count()

    def events(self, partition: StreamPartition | None = None) -> list[DayEvent]:
        """The day events (of ``partition``'s streams), sorted by (date, stream)."""
        return self._grouper.events(partition)[0]

    def events_in_order(self, partition: StreamPartition | None = None) -> tuple[list[DayEvent], Any]:
        """``events``, and when they all come from one file read by columns a
        numpy array of a number per event that sorts as its (date, stream)
        across partitions (``ColumnDays.order_keys``), else None."""
        return self._grouper.events(partition)


def read_sources(paths: Iterable[str | Path], config: SequencerConfig, on_bytes: ByteCounter | None = None,
                 latest_date: str | None = None, *, defer_rows: bool = False) -> SourceRead:
    """``read_day_events`` of all streams, the events not built yet (``SourceRead``).

    With ``defer_rows``, reading stops at the first file that would be read
    row by row (``SourceRead.unread`` from there on): a split replay has each
    of its processes read those for its own streams (``SourceRead.read_rest``),
    so that the row reader's work is split too.
    """
    return SourceRead(*_read(paths, config, None, on_bytes, latest_date, defer_rows))


def _read(paths: Iterable[str | Path], config: SequencerConfig, partition: StreamPartition | None,
          on_bytes: ByteCounter | None, latest_date: str | None,
          defer_rows: bool = False) -> tuple["_DayGrouper", list[Path]]:
    """The grouper over the files read, and those left unread (``read_sources``)."""
    grouper = _DayGrouper(config, partition, latest_date or latest_event_date_now())
    paths = [Path(path) for path in paths]
    # Whole-file reading by columns pays for its import only on big inputs;
    # a partition reads only some streams' rows, which the row reader skips.
    grouper.by_columns = partition is None and sum(
        p.stat().st_size for p in paths if p.suffix.lower() == ".csv") >= COLUMNS_MIN_BYTES
    for i, path in enumerate(paths):
        if not grouper.read_file(path, on_bytes, row_by_row=not defer_rows):
            return grouper, paths[i:]
    return grouper, []


def expand_inputs(inputs: Iterable[str | Path], *, allow_none: bool = False) -> list[Path]:
    """Files as given; a folder stands for its supported files, sorted by name.

    A folder's hidden files (a name starting with ".") are not its data, as a
    shell's ``*`` leaves them out: macOS copies a ``._trades.csv`` of binary
    metadata beside ``trades.csv`` onto other disks and into zip files, and
    ``streamer follow`` keeps its ``.streamer_published.json`` in the folder.
    A hidden file named on its own is read.

    Inputs that come to no file at all (an empty folder, one of ``.csv.gz``
    files) are refused, naming what the folders hold instead: a run of nothing
    looked like a run of data that had no days. ``allow_none`` (a folder
    watched for files to come) takes them."""
    found: list[Path] = []
    folders: list[Path] = []
    others: list[str] = []  # the folders' files of other types
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            folders.append(path)
            for entry in sorted(p for p in path.iterdir() if not p.name.startswith(".")):
                if entry.suffix.lower() in SUPPORTED_SUFFIXES:
                    found.append(entry)
                else:
                    others.append(entry.name)
        elif path.exists():
            found.append(path)
        else:
            raise SourceError(f"{path}: no such file or folder")
    if folders and not found and not allow_none:
        held = f"it holds {', '.join(others[:3])}{', ...' if len(others) > 3 else ''}" if others else "it is empty"
        if any(name.lower().endswith((".gz", ".bz2", ".xz", ".zst", ".zip")) for name in others):
            held += "; compressed files are not read: decompress them first"
        raise SourceError(f"{', '.join(map(str, folders))}: no CSV, Parquet or JSON-lines file in the "
                          f"folder ({held})")
    return found


# --- readers: each yields (line number, column getter, raw text) ------------------------


class _CountingReader(io.RawIOBase):
    """A file's raw bytes, counted as they are read.

    The buffered and text layers above read 64 KiB at a time, so counting
    costs nothing per row.
    """

    def __init__(self, path: Path, on_bytes: ByteCounter) -> None:
        super().__init__()
        self._file = io.FileIO(path, "r")
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)
        if count:
            self._on_bytes(count)
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_text(path: Path, on_bytes: ByteCounter | None, newline: str | None) -> io.TextIOBase:
    encoding, errors = _text_encoding(path)
    if on_bytes is None:
        return path.open(newline=newline, encoding=encoding, errors=errors)
    binary = io.BufferedReader(_CountingReader(path, on_bytes), 1 << 16)
    return io.TextIOWrapper(binary, encoding=encoding, newline=newline, errors=errors)


#: Byte order marks of text that is not UTF-8, longest first (UTF-32 LE's starts as UTF-16 LE's).
_OTHER_UNICODE = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                  (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _text_encoding(path: Path) -> tuple[str, str]:
    """How to decode a text input: (encoding, error handler).

    UTF-8 (a BOM skipped), a byte that is not UTF-8 kept as a lone surrogate
    (``surrogateescape``) so that it costs its row. Or UTF-16 or UTF-32 when
    the file starts with its byte order mark: Windows PowerShell 5 writes
    ``Out-File`` and ``>`` as UTF-16, whose every line was rejected as not
    UTF-8. A lone surrogate there passes through (``surrogatepass``): no cell
    that holds one is valid, so it too costs its row."""
    with path.open("rb") as handle:
        head = handle.read(4)
    for mark, encoding in _OTHER_UNICODE:
        if head.startswith(mark):
            return encoding, "surrogatepass"
    return "utf-8-sig", "surrogateescape"


def _rows(path: Path, on_bytes: ByteCounter | None = None, decoder: EventDecoder | None = None) -> Iterator[Row]:
    """Rows of a Parquet or JSON lines file (CSV has its own fast reader)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path, on_bytes)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl_rows(path, on_bytes, decoder)
    raise SourceError(f"{path}: unsupported file type {suffix!r} (csv, parquet, jsonl)")


def _column_index(path: Path, header: list[str]) -> dict[str, int]:
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    doubled = _doubled_columns(header)
    if doubled:
        raise SourceError(f"{path}: {doubled}; which one holds the data is unknown: rename or drop the others")
    missing = [c for c in REQUIRED_COLUMNS if c not in index]
    if missing:
        raise SourceError(f"{path}: missing columns {', '.join(missing)} (header: {', '.join(header)})")
    return index


def _doubled_columns(names: Iterable[Any], what: str = "columns") -> str | None:
    """Which names (a header, a JSON row's keys) name one of ``COLUMNS`` twice, as
    the reader matches them (stripped, any case), said in words; None if none does.
    Taking the first or the last would silently read another column's values
    (a "Profit" renamed "Peak", or "Peak" beside "peak " from a join)."""
    spellings: dict[str, list[str]] = {}
    for name in names:
        spellings.setdefault(str(name).strip().lower(), []).append(str(name))
    doubled = [(column, spellings[column]) for column in COLUMNS if len(spellings.get(column, ())) > 1]
    if not doubled:
        return None
    return "; ".join(f"{what} {' and '.join(map(repr, found))} are the same column {column}"
                     for column, found in doubled)


def _csv_getter(values: list[str], positions: dict[str, int | None]) -> Callable[[str], Any]:
    def get(column: str) -> Any:
        i = positions[column]
        if i is None:
            return None
        value = values[i]
        return value if value != "" else None
    return get


def _short_row(found: int, expected: int) -> Callable[[str], Any]:
    def get(column: str) -> Any:
        raise InvalidEvent(f"row has {found} fields, header has {expected}")
    return get


def _parquet_rows(path: Path, on_bytes: ByteCounter | None = None) -> Iterator[Row]:
    import pandas as pd  # only Parquet needs pandas; CSV replay stays light

    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # noqa: BLE001 - pyarrow raises ArrowInvalid, OSError, ...
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise SourceError(f"{path}: not a readable Parquet file ({type(error).__name__}: {first_line})") from error
    if on_bytes is not None:
        on_bytes(path.stat().st_size)  # read whole, at once
    if any(name is not None for name in frame.index.names):
        # pandas writes a named index (``set_index("Date")``) beside the columns
        # and reads it back as the index: it is a column of the file. (An unnamed
        # index is pandas' row numbering, no column.) A name in both is refused below.
        frame = frame.reset_index(allow_duplicates=True)
    index = _column_index(path, [str(c) for c in frame.columns])
    columns = {c: _parquet_cells(frame.iloc[:, index[c]]) if c in index else None for c in COLUMNS}
    for row in range(len(frame)):
        def get(column: str, _row=row) -> Any:
            values = columns[column]
            return None if values is None else values[_row]
        yield row + 1, get, None


def _parquet_cells(column: Any) -> list[Any]:
    """A Parquet column's values as the row reader takes a CSV's cells.

    - Missing is None, however the column's type spells it: NaN, None, pandas'
      ``NA`` (its nullable ``Int64``, ``Float64`` and ``string`` dtypes) or ``NaT``
      (Parquet and pandas cannot tell an empty cell from NaN, so NaN is missing too).
    - A float32 or float16 value is the decimal it prints as, the shortest that
      reads back as the same value: 0.175 stored as float32 is 0.17499999701976776,
      which NG's increment of 0.025 floors to 0.15; the writer meant 0.175.
    - A decimal (``decimal128`` of databases and Spark) is the nearest float, as
      its text in a CSV would be.
    - An empty string is an empty cell, as in a CSV: a frame read with
      ``pd.read_csv(..., dtype=str, keep_default_na=False)`` keeps them so.
    """
    import numpy as np  # with pandas: only Parquet needs it

    missing = column.isna().to_numpy(dtype=bool)
    dtype = getattr(column.dtype, "numpy_dtype", column.dtype)  # a nullable dtype's numpy type
    if isinstance(dtype, np.dtype) and dtype.kind == "f" and dtype.itemsize < 8:
        # numpy prints a narrow float as the shortest decimal of its own width.
        text = column.to_numpy(dtype=dtype, na_value=np.nan).astype(str)
        values: list[Any] = [float(t) for t in text.tolist()]
    else:
        values = column.astype(object).tolist()
        for i, value in enumerate(values):
            if isinstance(value, Decimal):
                values[i] = float(value)
            elif isinstance(value, str) and not value:  # (pd.NA == "" is no bool)
                values[i] = None
    for i in np.flatnonzero(missing).tolist():
        values[i] = None
    return values


def _jsonl_rows(path: Path, on_bytes: ByteCounter | None = None,
                decoder: EventDecoder | None = None) -> Iterator[Row]:
    """Rows of a JSON lines file; a line that the typed decoder reads as a whole day
    event is handed over as its typed fields (the rest as ``json`` parses them)."""
    with _open_text(path, on_bytes, None) as handle:
        for line_no, text in enumerate(handle, start=1):
            text = text.strip()
            if text[:1] == "\ufeff":  # files joined by `cat`: each one's byte order mark
                text = text[1:].strip()
            if not text:
                continue
            try:
                if len(text) > DEFAULT_MAX_EVENT_BYTES:
                    raise InvalidEvent(f"line of {len(text)} characters exceeds the limit of "
                                       f"{DEFAULT_MAX_EVENT_BYTES}")
                _check_decodable(text)
                fields = decoder.json_fields(text.encode("utf-8", "surrogatepass")) if decoder else None
                if fields is not None:
                    yield line_no, _WholeEvent(None, fields), text
                    continue
                obj = loads_json(text)
            except InvalidEvent as error:
                yield line_no, _bad_row(error.reason), text[:DEFAULT_MAX_EVENT_BYTES]
                continue
            if not isinstance(obj, dict):
                yield line_no, _bad_row(f"expected a JSON object, got {type(obj).__name__}"), text
                continue
            if "slots" in obj:
                try:
                    loads_json(text, distinct_keys=True)  # a key twice: refused as the worker refuses it
                except InvalidEvent as error:
                    yield line_no, _bad_row(error.reason), text
                    continue
                yield line_no, _whole_event(obj), text
                continue
            # json.loads keeps the last of two equal keys silently; its pairs hook sees both.
            doubled = _doubled_columns((key for key, _ in json.loads(text, object_pairs_hook=list)), "keys")
            if doubled:
                yield line_no, _bad_row(doubled), text
                continue
            # An empty string is an empty cell, as in a CSV: converters (Miller's
            # `--icsv --ojsonl`, csvkit's csvjson) write a CSV's empty cells so.
            lowered = {str(k).strip().lower(): None if v == "" else v for k, v in obj.items()}
            yield line_no, lowered.get, text


def _check_decodable(text: str) -> None:
    bad = _UNDECODABLE.search(text)
    if bad is not None:
        byte = ord(bad.group()) - 0xDC00
        raise InvalidEvent(f"not UTF-8: byte 0x{byte:02x} at character {bad.start() + 1}")


def _bad_row(reason: str) -> Callable[[str], Any]:
    def get(column: str) -> Any:
        raise InvalidEvent(reason)
    return get


class _WholeEvent:
    """Marker getter: the JSON line is a complete day event, not a long-format row:
    its parsed JSON ``obj``, or the typed ``fields`` of ``EventDecoder.json_fields``."""

    def __init__(self, obj: dict | None, fields: Any = None) -> None:
        self.obj = obj
        self.fields = fields

    def __call__(self, column: str) -> Any:
        if self.obj is None:
            return getattr(self.fields, column, None)
        return self.obj.get(column)

    def stream(self) -> Any:
        return self.fields.stream if self.obj is None else self.obj.get("stream")


def _whole_event(obj: dict) -> _WholeEvent:
    return _WholeEvent(obj)


# --- grouping ---------------------------------------------------------------------------


class _DayGrouper:
    """Validates rows into slot outcomes and collects them per (stream, date)."""

    def __init__(self, config: SequencerConfig, partition: StreamPartition | None = None,
                 latest_date: str | None = None) -> None:
        self.config = config
        self.partition = partition
        self.latest_date = latest_date
        #: Stream cells seen to belong to another partition: the CSV fast path skips their rows.
        self.foreign_streams: set[str] = set()
        self._owned: dict[Any, bool] = {}
        self.days: dict[tuple[str, str], dict[str, SlotOutcome]] = {}
        self.whole: dict[tuple[str, str], DayEvent] = {}
        self.rejects: list[Reject] = []
        self.rows = 0
        self.decoder = EventDecoder(config)
        self.rules = self.decoder.rules
        #: Date cells accepted (parsed, not after ``latest_date``) -> ISO date.
        self._accepted_dates: dict[str, str] = {}
        self._names: dict[str, tuple[str, str, str]] = {}
        self._row_keys: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        #: Read clean CSV files by columns (``csv_columns``) rather than row by row.
        self.by_columns = False
        #: Days whose slots came in session order, by their slot count then:
        #: ``events`` need not reorder them while no later row added a slot.
        self.in_session_order: dict[tuple[str, str], int] = {}
        #: Files read by columns whose events are not built yet; the (stream,
        #: date) of their days once a second file needs them.
        self.column_days: list[ColumnDays] = []
        self._column_keys: set[tuple[str, str]] | None = None

    def add_row(self, source: str, line: int, get: Callable[[str], Any], raw: str | None) -> None:
        if self.partition is not None and not self._owns(get):
            return
        self.rows += 1
        stream = date = None
        try:
            if raw is not None:
                _check_decodable(raw)
            if isinstance(get, _WholeEvent):
                event = (self.decoder.of_fields(get.fields, self.latest_date) if get.obj is None
                         else parse_day_event(get.obj, self.config, self.latest_date))
                stream, date = event.stream, event.date  # a duplicate's reject names its day
                key = (stream, date)
                if key in self.days or key in self.whole:
                    raise InvalidEvent(f"duplicate day event for {event.stream} {event.date}")
                self.whole[key] = event
                return
            stream, instrument, session = self._stream(get("stream"), get("instrument"), get("session"))
            date = self._date(get("date"))
            slot = self._slot(get("time"), session)
            if not isinstance(get, _WholeEvent):
                raw_key = tuple("" if get(c) is None else str(get(c)) for c in ("stream", "instrument", "session", "time"))
                self._row_keys[raw_key] = (stream, slot)
            outcome = self.rules.cells_outcome(slot, get("result"), get("peak"), get("target"),
                                               get("direction"), get("range"), get("profit"))
            day = self.days.setdefault((stream, date), {})
            if (stream, date) in self.whole:
                raise InvalidEvent(f"duplicate: {stream} {date} already came as a whole day event")
            first = day.get(slot)
            if first is not None:
                what = "same values as" if first == outcome else "different values from"
                raise InvalidEvent(f"duplicate row for {stream} {date} {slot} ({what} an earlier row)")
            day[slot] = outcome
        except InvalidEvent as error:
            self.rejects.append(Reject(source, line, error.reason, raw if raw is not None else _raw(get),
                                       stream, date))

    def _owns(self, get: Callable[[str], Any]) -> bool:
        if isinstance(get, _WholeEvent):
            stream = get.stream()
        else:
            try:
                stream = get("stream")
            except InvalidEvent:  # an unreadable row: partition 0 rejects it
                stream = None
        try:
            owned = self._owned.get(stream)
        except TypeError:  # unhashable (a JSON list): cannot be a stream name
            return self.partition.owns(None)
        if owned is None:
            owned = self._owned[stream] = self.partition.owns(stream)
            if not owned and isinstance(stream, str):
                self.foreign_streams.add(stream)
        return owned

    def _stream(self, stream: Any, instrument: Any, session: Any) -> tuple[str, str, str]:
        found = self.rules.identity(stream, instrument, session)
        self._names[found[0]] = found
        return found

    def _date(self, value: Any) -> str:
        date = self.rules.date(value, self.latest_date)
        if type(value) is str:  # accepted: the CSV fast path looks it up
            self._accepted_dates[value] = date
        return date

    def _slot(self, value: Any, session: str) -> str:
        if value is not None and not isinstance(value, str):
            value = _time_of_day(value)
        return self.rules.slot(value, session)

    def read_file(self, path: Path, on_bytes: ByteCounter | None = None, row_by_row: bool = True) -> bool:
        """Add a file's rows; with ``row_by_row`` False, only if it is read by
        columns (False: it was not read, nothing was added or counted)."""
        if path.suffix.lower() == ".csv":
            return self.read_csv(path, on_bytes, row_by_row)
        if not row_by_row:
            return False
        self.settle_column_days()
        for line, get, raw in _rows(path, on_bytes, self.decoder):
            self.add_row(str(path), line, get, raw)
        return True

    def read_csv(self, path: Path, on_bytes: ByteCounter | None = None, row_by_row: bool = True) -> bool:
        """Rows of a CSV file: the common case inlined, any other row through ``add_row``.

        The checks and spellings are the domain's (``EventRules``, ``RESULT_NAMES``,
        ``NUMBER_LIMIT``, ``DIRECTION_MAX_CHARS``): each distinct (stream,
        instrument, session, time) is validated once by ``add_row`` and remembered,
        each distinct date parsed once; a chained comparison checks number ranges
        (it is False for NaN and infinities). A row that fails any of it goes
        through ``add_row``, which says why (``tests/unit/test_csv_paths.py`` holds the
        two paths equal).
        """
        if not row_by_row and not self.by_columns:
            return False
        counted = [0]
        if on_bytes is not None and row_by_row:  # (else the bytes are counted once read by columns)
            def count(read: int, on_bytes: ByteCounter = on_bytes) -> None:
                counted[0] += read
                on_bytes(read)
        else:
            count = None
        with _open_text(path, count, "") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return True
            index = _column_index(path, header)
            width = len(header)
            if self.by_columns:
                data = path.read_bytes()
                if read_clean_csv(path, data, index, width, self):
                    if on_bytes is not None:
                        on_bytes(len(data) - counted[0])
                    return True
            if not row_by_row:
                return False
            self.settle_column_days()
            positions = {c: index.get(c) for c in COLUMNS}
            i_date, i_time, i_stream, i_result = (index[c] for c in REQUIRED_COLUMNS)
            # An absent optional column reads as the header's width: one past the
            # row, padded below with an empty cell, so the loop needs no branch.
            i_session, i_instrument, i_target, i_peak, i_direction, i_range, i_profit = (
                index.get(c, width) for c in ("session", "instrument", "target", "peak",
                                              "direction", "range", "profit"))
            grouper = self
            # Only a quote makes a row of several lines; a file without one needs
            # no look for them among the rows of other partitions' streams.
            quoted = self.partition is not None and _holds_a_quote(path)
            keys = self._row_keys
            dates = self._accepted_dates
            parse_date = self._date
            new_outcome = tuple.__new__  # the fields are checked: no keyword __new__ (a Python call)
            days = self.days
            whole = self.whole
            foreign = self.foreign_streams
            results = RESULT_NAMES
            limit = NUMBER_LIMIT  # the chained comparisons are also False for NaN and infinities
            direction_chars = DIRECTION_MAX_CHARS
            rows = 0
            try:
                for values in reader:
                    if len(values) != width:
                        if values:
                            grouper.add_csv_row(path, reader.line_num, values, width, positions)
                        continue
                    if foreign and values[i_stream] in foreign:
                        if quoted:
                            joined = ",".join(values)
                            if "\n" in joined or "\r" in joined:
                                # A stray quote's row: its lines may hold rows of
                                # this partition's streams (``add_csv_row``).
                                grouper.add_csv_row(path, reader.line_num, values, width, positions)
                        continue
                    values.append("")
                    try:
                        stream, slot = keys[(values[i_stream], values[i_instrument], values[i_session], values[i_time])]
                        # A new date (each row of a long file may start one) is parsed
                        # here; a bad one raises InvalidEvent, a ValueError.
                        date = dates.get(values[i_date]) or parse_date(values[i_date])
                        result = results[values[i_result]]
                        peak = values[i_peak]
                        peak = float(peak) if peak else None
                        target = values[i_target]
                        target = float(target) if target else None
                        rng = values[i_range]
                        rng = float(rng) if rng else None
                        profit = values[i_profit]
                        profit = float(profit) if profit else None
                    except (KeyError, ValueError):
                        peak = rng = -1.0  # sends the row down the generic path below
                    if (
                        (peak is not None and not 0 <= peak <= limit)
                        or (rng is not None and not 0 <= rng <= limit)
                        or (target is not None and not -limit <= target <= limit)
                        or (profit is not None and not -limit <= profit <= limit)
                        or (len(values[i_direction]) > direction_chars or not values[i_direction].isprintable())
                    ):
                        del values[-1]
                        grouper.add_csv_row(path, reader.line_num, values, width, positions)
                        continue
                    key = (stream, date)
                    day = days.get(key)
                    if day is None:
                        day = days[key] = {}
                    if slot in day or (whole and key in whole):
                        del values[-1]
                        grouper.add_csv_row(path, reader.line_num, values, width, positions)
                        continue
                    rows += 1
                    day[slot] = new_outcome(SlotOutcome, (result, peak, target, values[i_direction] or None, rng, profit))
            except csv.Error as error:  # a cell over the csv module's field size limit, say
                raise SourceError(f"{path}: line {reader.line_num}: not readable as CSV ({error}); "
                                  "nothing was written") from None
            grouper.rows += rows
        return True

    def add_csv_row(self, path: Path, line: int, values: list[str], width: int,
                    positions: dict[str, int | None]) -> None:
        """``add_row`` of a CSV row that the fast loop did not take, read up to ``line``.

        A stray quote (a cell written ``"Long``) makes the csv module read the
        lines after it, up to the next quote or the end of the file, into one
        cell: one such row cost every row after it, as a single reject. So a row
        refused with a line break in a cell, when one of the lines after its
        first is a valid row on its own, is refused by its first line, and each
        line after it is read again as a row of its own. Any other row (a valid
        one with a line break in a notes column, a quoted cell of nothing but
        line breaks) is read as the csv module split it.
        """
        source = str(path)
        if any("\n" in value or "\r" in value for value in values):
            found = self._lines_of_a_stray_quote(path, line, values, width, positions)
            if found is not None:
                opening, rows = found
                first = line - len(rows)
                self.add_row(source, first, _bad_row(
                    f"a quote opened on this line runs to line {line}: its row is refused and "
                    f"lines {first + 1}-{line} are read on their own"), opening)
                for number, cells in enumerate(rows, start=first + 1):
                    if cells:
                        self.add_csv_row(path, number, cells, width, positions)
                return
        getter = _csv_getter(values, positions) if len(values) == width else _short_row(len(values), width)
        self.add_row(source, line, getter, ",".join(values))

    def _lines_of_a_stray_quote(self, path: Path, line: int, values: list[str], width: int,
                                positions: dict[str, int | None]) -> tuple[str, list[list[str] | None]] | None:
        """The first line of the row ``values`` (ending at ``line``) and the cells of
        each line after it, each line read alone, when the row is refused and one
        of those lines is a valid row; else None. The checks are of the cells alone
        (no duplicates), so each process of a split replay answers the same."""
        probe = _DayGrouper(self.config, None, self.latest_date)
        if len(values) == width:
            probe.add_row("", 0, _csv_getter(values, positions), "")
            if not probe.rejects:
                return None  # a valid row (a duplicate, say): the file is not read again
        lines = _row_lines(path, line, values)
        if lines is None:
            return None
        rows = [next(csv.reader([text.rstrip("\r\n")]), None) for text in lines[1:]]
        for cells in rows:
            if cells and len(cells) == width:
                before = len(probe.rejects)
                probe.add_row("", 0, _csv_getter(cells, positions), "")
                if len(probe.rejects) == before:
                    return lines[0].rstrip("\r\n"), rows
        return None

    def rejects_of_rows(self, source: str, lines: list[tuple[int, str]],
                        index: dict[str, int]) -> list[Reject] | None:
        """The rejects of the CSV rows ``lines`` ((line number, text) of a file
        without quotes, columns as ``index``) that the column reader's checks
        refuse: each through ``add_row`` of a grouper of its own, since a cell
        the checks refuse gives a row its reason whatever rows came before it
        (``add_row`` checks every cell before it looks for a duplicate). None
        if one of them is not refused after all: the row reader must then read
        the whole file."""
        probe = _DayGrouper(self.config, None, self.latest_date)
        positions = {c: index.get(c) for c in COLUMNS}
        for line, text in lines:
            probe.add_row(source, line, _csv_getter(text.split(","), positions), text)
        if len(probe.rejects) != len(lines) or any(probe.days.values()) or probe.whole:
            return None
        return probe.rejects

    def add_column_days(self, days: ColumnDays, rows: int) -> bool:
        """Take the days of a file read by columns; False (nothing taken) if an
        earlier file has one of them: the row reader says which rows are duplicates."""
        if self.days or self.whole or self.column_days:
            keys = days.keys()
            if self._column_keys is None:
                self._column_keys = {key for earlier in self.column_days for key in earlier.keys()}
            taken = self._column_keys
            if any(key in self.days or key in self.whole or key in taken for key in keys):
                return False
            taken.update(keys)
        self.column_days.append(days)
        self.rows += rows
        return True

    def settle_column_days(self) -> None:
        """Build the days read by columns into ``days``, before a file read row by
        row (whose rows may add to them, or repeat them)."""
        for pending in self.column_days:
            for key, slots in pending.slot_days(pending.owned_days(None)):
                self.days[key] = slots
                self.in_session_order[key] = len(slots)
        self.column_days = []
        self._column_keys = None

    def count(self) -> int:
        """How many day events ``events`` builds (of all streams)."""
        return (len(self.whole) + sum(1 for slots in self.days.values() if slots)
                + sum(map(len, self.column_days)))

    def events(self, partition: StreamPartition | None = None) -> tuple[list[DayEvent], Any]:
        """The day events (of ``partition``'s streams) sorted by (date, stream), and
        their order keys when one file read by columns gave them all (``SourceRead``)."""
        owned: dict[str, bool] = {}

        def owns(stream: str) -> bool:
            found = owned.get(stream)
            if found is None:
                found = owned[stream] = partition is None or partition.owns(stream)
            return found

        events: list[DayEvent] = [e for e in self.whole.values() if owns(e.stream)]
        sessions = self.config.sessions
        in_order = self.in_session_order
        new_event = tuple.__new__  # the fields are checked: no keyword __new__ (a Python call)
        for key, slots in self.days.items():
            if not slots or not owns(key[0]):
                continue
            stream, date = key
            _, instrument, session = self._names[stream]
            if in_order.get(key) != len(slots):
                slots = {s: slots[s] for s in sessions[session] if s in slots}
            events.append(new_event(DayEvent, (stream, instrument, session, date, MappingProxyType(slots))))
        if not events and len(self.column_days) == 1:
            return self.column_days[0].events(owns)  # built in (date, stream) order
        for pending in self.column_days:
            events.extend(pending.events(owns)[0])
        events.sort(key=lambda e: (e.date, e.stream))
        return events, None

    def finish(self) -> SourceBatch:
        return SourceBatch(self.events()[0], self.rejects, self.rows)


def _time_of_day(value: Any) -> str:
    """The text of a Parquet ``Time`` cell that is not a string, for ``normalize_slot``.

    A time of day (``datetime.time``: "07:30:00"); a duration since midnight,
    as pandas' ``to_timedelta`` and SQL ``TIME`` columns give it (a timedelta
    under a day: "07:30:00"); a timestamp, as ``pd.to_datetime("07:30")``
    makes one (today's date, or the row's), by its time of day. Anything else
    as ``str`` writes it, which the slot check then refuses by that text.
    """
    if isinstance(value, _dt.datetime):
        return value.time().isoformat()
    if isinstance(value, _dt.timedelta) and _dt.timedelta(0) <= value < _dt.timedelta(days=1):
        return (_dt.datetime.min + value).time().isoformat()
    return str(value)


def _holds_a_quote(path: Path) -> bool:
    """Whether the file has a ``"`` anywhere: one pass in C over its pages, no copy."""
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return False
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(b'"') >= 0


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _row_lines(path: Path, line: int, values: list[str]) -> list[str] | None:
    """The lines of ``path`` (with their line ends) that the csv module read as the
    row ``values``, ending at ``line``; None if they cannot be found again.

    The row's cells hold all its line breaks but the one that ended it, or all
    of them when a quote ran to the end of the file. So it began on one of two
    lines: the one whose lines parse as ``values``."""
    breaks = sum(len(_LINE_BREAK.findall(value)) for value in values)
    with _open_text(path, None, "") as handle:
        lines = list(itertools.islice(handle, max(line - breaks - 1, 0), line))
    for count in (breaks + 1, breaks):
        if 1 < count <= len(lines) and next(csv.reader(lines[-count:]), None) == values:
            return lines[-count:]
    return None


def _raw(get: Callable[[str], Any]) -> str:
    try:
        return ",".join("" if get(c) is None else str(get(c)) for c in COLUMNS)
    except InvalidEvent:
        return ""
