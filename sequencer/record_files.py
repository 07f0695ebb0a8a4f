"""CSV sinks for decisions and rejects, and the reader of decisions files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterable, TextIO

from .domain import DECISION_FIELDS, Decision
from .file_writes import naming
from .sources import Reject

REJECT_FIELDS = ("source", "line", "stream", "date", "reason", "raw")


def _cell(value: Any) -> Any:
    return "" if value is None else value


class DecisionCsvWriter:
    """Writes one row per decision; ``slot_sums`` as a JSON object, empty cell for null."""

    def __init__(self, handle: TextIO) -> None:
        self._writer = csv.writer(handle)
        self._writer.writerow(DECISION_FIELDS)
        # slot_sums as compact JSON, from a template per slot layout: a
        # stream's slots never change, its sums do (tens of thousands of
        # distinct combinations in a long replay, too many to cache).
        self._sums_templates: dict[tuple[str, ...], str] = {}
        self.count = 0

    def write(self, decision: Decision) -> None:
        row = list(decision)
        sums = decision.slot_sums
        slots = tuple(sums)
        template = self._sums_templates.get(slots)
        if template is None:
            template = self._sums_templates[slots] = (
                "{" + ",".join(json.dumps(slot) + ":%d" for slot in slots) + "}")
        row[6] = template % tuple(sums.values())
        for i in (4, 5, 9):  # result, peak, rolling_median may be null
            if row[i] is None:
                row[i] = ""
        self._writer.writerow(row)
        self.count += 1


def write_decisions_csv(path: Path, decisions: Iterable[Decision]) -> int:
    with naming(path), Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = DecisionCsvWriter(handle)
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


def write_rejects_csv(path: Path, rejects: Iterable[Reject]) -> int:
    count = 0
    with naming(path), Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(REJECT_FIELDS)
        for reject in rejects:
            writer.writerow([_cell(reject.source), _cell(reject.line), _cell(reject.stream),
                             _cell(reject.date), reject.reason, _cell(_as_utf8(reject.raw))])
            count += 1
    return count
