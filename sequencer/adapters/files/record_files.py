"""CSV sinks for decisions and rejects, and the readers of decisions files."""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, TextIO

from sequencer.domain import (
    ALL,
    DECISION_FIELDS,
    METRIC_NAMES,
    SCORES,
    TRADE_FIELDS,
    Decision,
    DecisionColumns,
    PerformanceReport,
    SequencerError,
)
from sequencer.adapters.files.file_writes import naming
from sequencer.adapters.files.sources import Reject

REJECT_FIELDS = ("source", "line", "stream", "date", "reason", "raw")


def _cell(value: Any) -> Any:
    return "" if value is None else value


_NULLABLE = tuple(DECISION_FIELDS.index(name) for name in ("result", "peak", "rolling_median"))


def _csv_text(text: str) -> str:
    """*text* as a field exactly as ``csv.writer`` (default dialect, QUOTE_MINIMAL) writes it."""
    if '"' in text:
        return '"' + text.replace('"', '""') + '"'
    if "," in text or "\n" in text or "\r" in text:
        return '"' + text + '"'
    return text


def _csv_row(fields: Iterable[Any]) -> str:
    """One row as ``csv.writer`` writes it (used once per layout, to build a template)."""
    out = io.StringIO()
    csv.writer(out).writerow(fields)
    return out.getvalue()


class DecisionCsvWriter:
    """Writes one row per decision; ``slot_sums`` as a JSON object, empty cell for null.

    The bytes are ``csv.writer``'s; they are built by a %-template per
    (stream, instrument, slot layout) rather than by ``writerow`` (a list
    copy, a cell per field and a quoting scan of each: a third of the
    writer's time). The template holds the stream and instrument as
    ``csv.writer`` wrote them and the slot_sums JSON already quoted; of
    the other text fields, the date, result and reasons are quoted as they
    need (``_csv_text``: the reasons per row, a date or result once per
    distinct text); traded_slot and next_slot are slots of the layout,
    ``HH:MM`` by the config's rules (a layout whose slots would need
    quoting falls back to ``writerow``). Numbers and booleans are written
    as ``str`` writes them, as ``csv.writer`` does.

    Rows are handed to ``handle`` in batches of ``BATCH_ROWS`` (a text
    file's ``write`` per row cost a third of the writer's time), so the
    writer is a context manager: leaving it (or ``flush``) writes the rest.
    With ``lengths`` it also keeps each row's length in bytes (UTF-8), in
    order: a split replay interleaves its parts' rows by them.
    """

    #: Rows formatted before they are written at once (a few hundred KB).
    BATCH_ROWS = 2048

    def __init__(self, handle: TextIO, *, lengths: bool = False) -> None:
        self._handle = handle
        handle.write(_csv_row(DECISION_FIELDS))
        self._pending: list[str] = []
        #: Each row's length in bytes, if asked for (else None).
        self.lengths: list[int] | None = [] if lengths else None
        # a stream's slots never change, its sums do (tens of thousands of
        # distinct combinations in a long replay, too many to cache rows)
        self._templates: dict[tuple[str, str, tuple[str, ...]], str | None] = {}
        self._sums_templates: dict[tuple[str, ...], str] = {}
        # date and result texts as cells (quoted if they had to be), by text
        self._cells: dict[str | None, str] = {}
        self.count = 0

    def write(self, decision: Decision) -> None:
        (stream, instrument, date, traded_slot, result, peak, sums, time_change, next_slot, rolling_median,
         rolling_median_target, median_ladder_target, ladder_step, days_at_level, next_target, no_trade_next,
         time_reason, target_reason, traded, profit, profit_usd) = decision
        slots = tuple(sums)
        template = self._templates.get((stream, instrument, slots), "")
        if template == "":
            template = self._templates[stream, instrument, slots] = self._row_template(stream, instrument, slots)
        if template is None:
            self._pending.append(self._row(decision, slots))
        else:
            date_cell = self._cells.get(date)  # a few thousand dates, each checked once
            if date_cell is None:
                date_cell = self._cells[date] = _csv_text(date)
            result_cell = self._cells.get(result)  # a handful of results and None
            if result_cell is None:
                result_cell = self._cells[result] = "" if result is None else _csv_text(result)
            self._pending.append(template % (
                date_cell, traded_slot, result_cell,
                "" if peak is None else peak, *sums.values(), time_change, next_slot,
                "" if rolling_median is None else rolling_median, rolling_median_target, median_ladder_target,
                ladder_step, days_at_level, next_target, no_trade_next, _csv_text(time_reason),
                _csv_text(target_reason), traded, profit, profit_usd))
        self.count += 1
        if len(self._pending) >= self.BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Hand the rows formatted so far to the handle."""
        pending = self._pending
        if not pending:
            return
        text = "".join(pending)
        if self.lengths is not None:
            # ASCII (the usual case): a row's characters are its bytes.
            self.lengths.extend(map(len, pending) if text.isascii() else
                                (len(row.encode("utf-8")) for row in pending))
        self._handle.write(text)
        pending.clear()

    def __enter__(self) -> "DecisionCsvWriter":
        return self

    def __exit__(self, kind: object, *exc_info: object) -> None:
        if kind is None:  # (after a failure the file is thrown away: a failed write would only fail again)
            self.flush()

    def _sums_template(self, slots: tuple[str, ...]) -> str:
        template = self._sums_templates.get(slots)
        if template is None:
            template = self._sums_templates[slots] = (
                "{" + ",".join(json.dumps(slot).replace("%", "%%") + ":%d" for slot in slots) + "}")
        return template

    def _row_template(self, stream: str, instrument: str, slots: tuple[str, ...]) -> str | None:
        if any(_csv_text(slot) != slot for slot in slots):
            return None
        head = _csv_row([stream, instrument, ""])[:-2].replace("%", "%%")  # "stream,instrument,"
        sums = _csv_text(self._sums_template(slots))
        return (head + "%s,%s,%s,%s," + sums + ",%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\r\n")

    def _row(self, decision: Decision, slots: tuple[str, ...]) -> str:
        """One row by ``csv.writer`` itself (a layout the templates cannot hold)."""
        row = list(decision)
        row[6] = self._sums_template(slots) % tuple(decision.slot_sums.values())
        for i in _NULLABLE:  # result, peak, rolling_median may be null
            if row[i] is None:
                row[i] = ""
        return _csv_row(row)


def write_decisions_csv(path: Path, decisions: Iterable[Decision]) -> int:
    with naming(path), Path(path).open("w", newline="", encoding="utf-8") as handle, \
            DecisionCsvWriter(handle) as writer:
        for decision in decisions:
            writer.write(decision)
    return writer.count


def read_decisions_csv(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _as_utf8(raw: str | None) -> str | None:
    """A rejected row may hold bytes that were not UTF-8 (read as lone surrogates,
    or a JSON escape of one): they are written as ``\\xNN`` escapes, so rejects.csv stays UTF-8."""
    if raw is None or raw.isascii():
        return raw
    try:
        return raw.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that no undecodable byte made
        return raw.encode("utf-8", "backslashreplace").decode("utf-8")


class DecisionFileError(SequencerError):
    """A decisions file that cannot be read at all (not a row of it: a bad row is skipped)."""


@dataclass
class DecisionFile:
    """The decisions of one file, and the rows that could not be read (``path:line: why``)."""

    path: Path
    decisions: list[Decision] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def read_decision_file(path: Path) -> DecisionFile:
    """Parse a decisions.csv (``DecisionCsvWriter``'s layout) into decisions.

    A file without the trade columns (written before SPEC 8) or that is not
    a decisions file raises ``DecisionFileError`` saying what to do; an
    unparsable row is skipped and named by file and line; an empty file
    holds no decisions.
    """
    path = Path(path)
    out = DecisionFile(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise DecisionFileError(f"{path}: {error.strerror or error}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None:
                return out
            order = _column_order(path, header)
            width = len(header)
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    if len(row) != width:
                        raise ValueError(f"{len(row)} cells, expected {width}")
                    out.decisions.append(_decision_from_row(row if order is None else [row[i] for i in order]))
                except (ValueError, TypeError, KeyError) as error:
                    out.problems.append(f"{path}:{line}: {error}")
        except (UnicodeDecodeError, csv.Error) as error:
            raise DecisionFileError(f"{path}: not a readable CSV file ({error})") from None
    return out


def _column_order(path: Path, header: list[str]) -> tuple[int, ...] | None:
    """Where each of ``DECISION_FIELDS`` is in the file's rows; None when in that order.

    Columns are found by name: a file saved again by a spreadsheet or written
    by another tool may have them in another order or add its own (a note, a
    tag), and reads as the same decisions. Refused, saying what to do: a file
    written before decisions carried their trade, one without some of the
    columns, one that names a column twice (which one holds the data is
    unknown)."""
    if tuple(header) == DECISION_FIELDS:
        return None
    if tuple(header) == tuple(name for name in DECISION_FIELDS if name not in TRADE_FIELDS):
        raise DecisionFileError(
            f"{path}: written before decisions carried their trade (no traded, profit, "
            f"profit_usd columns); replay the events again to get a report")
    missing = [name for name in DECISION_FIELDS if name not in header]
    if missing:
        raise DecisionFileError(f"{path}: not a decisions file of this version: missing columns {', '.join(missing)}")
    twice = [name for name in DECISION_FIELDS if header.count(name) > 1]
    if twice:
        raise DecisionFileError(f"{path}: column {', '.join(twice)} appears twice; which one holds the data is "
                                "unknown: rename or drop the others")
    return tuple(header.index(name) for name in DECISION_FIELDS)


#: As this project, pandas and Python write them, and as spreadsheets (Excel,
#: LibreOffice, R: TRUE, FALSE) and Spark (true, false) write them back.
_BOOLS = {spelling: value for value in (True, False)
          for spelling in (str(value), str(value).upper(), str(value).lower())}
_DATES: dict[str, str] = {}  # dates already checked; a few thousand at most


def _iso_date(text: str) -> str:
    if text not in _DATES:
        try:
            valid = len(text) == 10 and _dt.date.fromisoformat(text).isoformat() == text
        except ValueError:
            valid = False
        if not valid:
            raise ValueError(f"date {text!r} is not a date YYYY-MM-DD")
        if len(_DATES) < 100_000:
            _DATES[text] = text
    return text


def _flag(name: str, text: str) -> bool:
    try:
        return _BOOLS[text]
    except KeyError:
        raise ValueError(f"{name} {text!r} is not True or False") from None


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} {text!r} is not finite")
    return value


def _optional_number(name: str, text: str) -> float | None:
    return None if text == "" else _number(name, text)


def _slot_sums(text: str) -> MappingProxyType:
    try:
        sums = json.loads(text)
    except ValueError:
        raise ValueError(f"slot_sums {text[:40]!r} is not a JSON object") from None
    if not isinstance(sums, dict) or not all(type(v) is int for v in sums.values()):
        raise ValueError(f"slot_sums {text[:40]!r} is not a map of slot -> integer")
    return MappingProxyType(sums)


def _decision_from_row(row: list[str]) -> Decision:
    (stream, instrument, date, traded_slot, result, peak, sums, time_change, next_slot,
     rolling_median, rolling_target, ladder_target, step, days, next_target, no_trade_next,
     time_reason, target_reason, traded, profit, profit_usd) = row
    if not stream:
        raise ValueError("empty stream")
    if result and result not in SCORES:
        raise ValueError(f"result {result!r} is not one of {', '.join(SCORES)}")
    return Decision(
        stream, instrument, _iso_date(date), traded_slot, result or None,
        _optional_number("peak", peak), _slot_sums(sums), _flag("time_change", time_change), next_slot,
        _optional_number("rolling_median", rolling_median), _number("rolling_median_target", rolling_target),
        _number("median_ladder_target", ladder_target), int(step), int(days),
        _number("next_target", next_target), _flag("no_trade_next", no_trade_next), time_reason,
        target_reason, _flag("traded", traded), _number("profit", profit), _number("profit_usd", profit_usd))


def write_rejects_csv(path: Path, rejects: Iterable[Reject], *, append: bool = False) -> int:
    """Write rejects.csv; with ``append``, add to the file (its header only if it is new or
    empty): ``streamer follow`` keeps every file's rejects, not the last file's."""
    count = 0
    with naming(path), Path(path).open("a" if append else "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if handle.tell() == 0:
            writer.writerow(REJECT_FIELDS)
        for reject in rejects:
            writer.writerow([_cell(reject.source), _cell(reject.line), _cell(reject.stream),
                             _cell(reject.date), reject.reason, _cell(_as_utf8(reject.raw))])
            count += 1
    return count


#: performance.csv: a row per stream and one for all, the SPEC 8.3 metrics.
PERFORMANCE_FIELDS = ("stream",) + METRIC_NAMES


def performance_csv(report: PerformanceReport) -> str:
    """performance.csv's text: streams by name, then ``all``; a null metric is an
    empty cell, a float is written exactly (``repr``), never rounded."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(PERFORMANCE_FIELDS)
    for name, metrics in [*report.streams.items(), (ALL, report.all)]:
        writer.writerow([name, *(_cell(value) for value in metrics)])
    return out.getvalue()


def write_performance_csv(path: Path, report: PerformanceReport) -> int:
    """Write performance.csv; returns the rows written (streams and all)."""
    Path(path).write_text(performance_csv(report), encoding="utf-8", newline="")
    return len(report.streams) + 1


#: The columns the report reads (``DecisionColumns``), and how Arrow parses them.
_REPORT_COLUMNS = ("stream", "date", "traded_slot", "result", "time_change", "traded", "profit",
                   "profit_usd", "slot_sums")


def read_decision_columns(paths: Iterable[Path], *, slot_sums: bool = False,
                          streams: Iterable[str] | None = None) -> tuple[DecisionColumns, list[str]]:
    """The report's columns of decisions files, rows grouped by stream in date
    order (``DecisionColumns``), and the rows that could not be read.

    The report of the 120,000-decision workload must take under a second, so
    files are parsed by Arrow's CSV reader (in C++, the report's columns only)
    and checked as columns. A file that fails any check is read again row by
    row (``read_decision_file``), which names each bad row by file and line
    and skips it. ``slot_sums`` (parsed JSON) only when a rule needs them;
    ``streams`` keeps only those streams' rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    tables, problems = [], []
    for path in paths:
        table = _arrow_decisions(Path(path), slot_sums)
        if table is None:  # something Arrow or the checks refused: row by row, naming the rows
            read = read_decision_file(path)
            problems.extend(read.problems)
            table = _arrow_of_decisions(read.decisions, slot_sums)
        tables.append(table)
    fields = [name for name in _REPORT_COLUMNS if slot_sums or name != "slot_sums"]
    if not tables:
        return DecisionColumns(*([] for _ in _REPORT_COLUMNS[:-1])), problems
    # A stable sort by (stream, date): each stream's rows become one run in
    # date order, and of a (stream, date) given twice the first stays first.
    table = pa.concat_tables(tables)
    if streams is not None:
        table = table.filter(pc.is_in(table.column("stream"), pa.array(sorted(set(streams)), pa.string())))
    table = table.sort_by([("stream", "ascending"), ("date", "ascending")])
    columns = {name: table.column(name).to_pylist() for name in fields}
    if slot_sums:
        cache: dict[str, MappingProxyType] = {}
        columns["slot_sums"] = [cache.get(text) or cache.setdefault(text, _slot_sums(text))
                                for text in columns["slot_sums"]]
    return DecisionColumns(**columns), problems


def _arrow_decisions(path: Path, slot_sums: bool):
    """The file's report columns as an Arrow table, or None when a row needs
    the row-by-row reader (a bad value anywhere); raises for a file that is
    no decisions file of this version."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except OSError as error:
        raise DecisionFileError(f"{path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise DecisionFileError(f"{path}: not a readable CSV file ({error})") from None
    if header is None:
        return _arrow_of_decisions([], slot_sums)
    _column_order(path, header)  # Arrow reads the columns by name
    text = pa.string()
    wanted = [name for name in _REPORT_COLUMNS if slot_sums or name != "slot_sums"]
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            include_columns=wanted,
            column_types={"stream": text, "date": text, "traded_slot": text, "result": text,
                          "slot_sums": text, "time_change": pa.bool_(), "traded": pa.bool_(),
                          "profit": pa.float64(), "profit_usd": pa.float64()},
            true_values=[t for t, value in _BOOLS.items() if value],
            false_values=[t for t, value in _BOOLS.items() if not value], null_values=[""], strings_can_be_null=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    nullable = {"result"}
    if any(table.column(name).null_count for name in wanted if name not in nullable):
        return None
    if not set(pc.unique(table.column("result")).to_pylist()) <= set(SCORES) | {None}:
        return None
    for name in ("profit", "profit_usd"):
        if not pc.all(pc.is_finite(table.column(name))).as_py():
            return None
    try:
        for date in pc.unique(table.column("date")).to_pylist():
            _iso_date(date)
    except ValueError:
        return None
    if slot_sums:
        try:
            for sums in pc.unique(table.column("slot_sums")).to_pylist():
                _slot_sums(sums)
        except ValueError:
            return None
    return table.select(wanted)


def _arrow_of_decisions(decisions: list[Decision], slot_sums: bool):
    import pyarrow as pa

    columns = {name: [getattr(d, name) for d in decisions] for name in _REPORT_COLUMNS}
    if slot_sums:
        columns["slot_sums"] = [json.dumps(dict(d.slot_sums), separators=(",", ":")) for d in decisions]
    types = {"time_change": pa.bool_(), "traded": pa.bool_(), "profit": pa.float64(), "profit_usd": pa.float64()}
    wanted = [name for name in _REPORT_COLUMNS if slot_sums or name != "slot_sums"]
    return pa.table({name: pa.array(columns[name], type=types.get(name, pa.string())) for name in wanted})
