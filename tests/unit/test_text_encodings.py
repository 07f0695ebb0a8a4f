"""Text inputs in the Unicode encodings Windows tools write: Windows PowerShell 5's
``Out-File`` and ``>`` write UTF-16 with a byte order mark. Every line of such a
JSON-lines file was rejected as "not UTF-8", and a CSV refused for a header of
bytes; they read as their UTF-8 twins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sequencer.adapters.files import sources
from sequencer.adapters.files.sources import read_day_events
from sequencer.domain import SequencerConfig

CONFIG = SequencerConfig()
HEADER = "Date,Time,Session,Stream,Instrument,Target,Peak,Direction,Result,Range,Profit"
ROWS = ["2025-01-02,07:30,S1,ES1,ES,10.0,12.5,Lông,Win,9.5,10.0",  # a letter beyond ASCII
        "2025-01-02,08:00,S1,ES1,ES,10.0,,Short,Loss,11.0,-10.25",
        '2025-01-03,07:30,S1,ES1,ES,10.0,14.0,"Long",BE,9.0,0.0']
ENCODINGS = ["utf-16", "utf-16-be", "utf-32"]


def encoded(text: str, encoding: str) -> bytes:
    if encoding == "utf-16-be":  # Python's utf-16 writes little-endian; BE with its mark by hand
        return b"\xfe\xff" + text.encode("utf-16-be")
    return text.encode(encoding)  # utf-16 and utf-32 start with their byte order mark


def csv_text() -> str:
    return "\r\n".join([HEADER, *ROWS]) + "\r\n"


def jsonl_text() -> str:
    names = HEADER.split(",")
    return "".join(json.dumps(dict(zip(names, row.replace('"', "").split(",")))) + "\n" for row in ROWS)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("suffix, text", [(".csv", csv_text), (".jsonl", jsonl_text)])
def test_a_unicode_file_with_its_byte_order_mark_reads_as_its_utf8_twin(tmp_path: Path, encoding, suffix, text):
    twin = tmp_path / f"utf8{suffix}"
    twin.write_text(text(), encoding="utf-8")
    other = tmp_path / f"other{suffix}"
    other.write_bytes(encoded(text(), encoding))
    batch = read_day_events([other], CONFIG)
    assert batch.rejects == []
    assert batch.events == read_day_events([twin], CONFIG).events
    assert batch.events[0].slots["07:30"].direction == "Lông"  # by hand


def test_a_big_utf16_csv_is_read_row_by_row(tmp_path: Path, monkeypatch):
    # The column reader takes UTF-8 only; a UTF-16 file (NUL bytes) goes to the rows.
    monkeypatch.setattr(sources, "COLUMNS_MIN_BYTES", 0)
    path = tmp_path / "big.csv"
    path.write_bytes(encoded(csv_text(), "utf-16"))
    batch = read_day_events([path], CONFIG)
    assert batch.rejects == [] and [e.date for e in batch.events] == ["2025-01-02", "2025-01-03"]


def test_a_stray_quote_in_a_utf16_csv_costs_its_row(tmp_path: Path):
    rows = list(ROWS)
    rows[0] = rows[0].replace(",Lông,", ',"Lông,')
    path = tmp_path / "quote.csv"
    path.write_bytes(encoded("\r\n".join([HEADER, *rows]) + "\r\n", "utf-16"))
    batch = read_day_events([path], CONFIG)
    assert [r.line for r in batch.rejects] == [2]
    assert [(e.date, list(e.slots)) for e in batch.events] == [("2025-01-02", ["08:00"]), ("2025-01-03", ["07:30"])]


def test_a_lone_surrogate_in_utf16_costs_its_row(tmp_path: Path):
    text = csv_text().encode("utf-16-le")
    broken = text.replace("Short".encode("utf-16-le"), b"\x00\xd8" + "hort".encode("utf-16-le"))
    path = tmp_path / "broken.csv"
    path.write_bytes(b"\xff\xfe" + broken)
    batch = read_day_events([path], CONFIG)
    assert [r.line for r in batch.rejects] == [3]
    assert "direction" in batch.rejects[0].reason
    assert [list(e.slots) for e in batch.events] == [["07:30"], ["07:30"]]


def test_json_lines_files_joined_by_cat_keep_every_line(tmp_path: Path):
    # `cat a.jsonl b.jsonl` puts b's byte order mark at the start of a line inside:
    # that day was rejected ("malformed JSON: Unexpected UTF-8 BOM").
    event = {"stream": "ES1", "date": "2025-01-02", "slots": {"07:30": {"result": "Win", "peak": 12.0}}}
    later = dict(event, date="2025-01-03")
    path = tmp_path / "joined.jsonl"
    path.write_bytes(b"".join(b"\xef\xbb\xbf" + json.dumps(e).encode() + b"\n" for e in (event, later)))
    batch = read_day_events([path], CONFIG)
    assert batch.rejects == [] and [e.date for e in batch.events] == ["2025-01-02", "2025-01-03"]
