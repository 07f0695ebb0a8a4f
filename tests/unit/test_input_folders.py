"""A folder given as input stands for its data files, not for whatever else sits in it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sequencer.adapters.files.record_files import REJECT_FIELDS, write_rejects_csv
from sequencer.adapters.files.sources import Reject, SourceError, expand_inputs, read_day_events
from sequencer.domain import SequencerConfig

HEADER = "Date,Time,Session,Stream,Instrument,Target,Peak,Direction,Result,Range,Profit\n"


def test_hidden_files_of_a_folder_are_not_read(tmp_path: Path):
    (tmp_path / "trades.csv").write_text(HEADER + "2025-01-02,07:30,S1,ES1,ES,10.0,12.5,Long,Win,9.5,10.0\n")
    # macOS's AppleDouble twin (binary), streamer follow's bookkeeping, an editor's lock.
    (tmp_path / "._trades.csv").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    (tmp_path / ".streamer_published.json").write_text('{"trades.csv": [120, 1]}')
    (tmp_path / ".~lock.trades.csv").write_text("user,host")
    assert expand_inputs([tmp_path]) == [tmp_path / "trades.csv"]
    batch = read_day_events(expand_inputs([tmp_path]), SequencerConfig())
    assert batch.rejects == [] and [(e.stream, e.date) for e in batch.events] == [("ES1", "2025-01-02")]


def test_a_hidden_file_named_on_its_own_is_read(tmp_path: Path):
    hidden = tmp_path / ".trades.csv"
    hidden.write_text(HEADER)
    assert expand_inputs([hidden]) == [hidden]


def test_rejects_appended_keep_the_earlier_ones_and_one_header(tmp_path: Path):
    path = tmp_path / "rejects.csv"
    first = Reject("a.csv", 2, "bad result 'Maybe'", "row a")
    second = Reject("b.csv", 7, "malformed date", "row b", "ES1")
    write_rejects_csv(path, [first], append=True)  # a new file: with its header
    write_rejects_csv(path, [second], append=True)
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [list(REJECT_FIELDS), ["a.csv", "2", "", "", "bad result 'Maybe'", "row a"],
                    ["b.csv", "7", "ES1", "", "malformed date", "row b"]]
    write_rejects_csv(path, [second])  # without append: the file is the run's own
    assert path.read_text().count("\n") == 2


def test_folders_with_no_file_to_read_are_refused_naming_what_they_hold(tmp_path: Path):
    # A replay of them said "replayed 0 day events" and exited 0, like data without days.
    packed, empty = tmp_path / "packed", tmp_path / "empty"
    packed.mkdir()
    empty.mkdir()
    (packed / "trades_ES.csv.gz").write_bytes(b"\x1f\x8b")
    (packed / ".hidden.csv").write_text(HEADER)
    with pytest.raises(SourceError) as refused:
        expand_inputs([packed, empty])
    assert str(refused.value) == (f"{packed}, {empty}: no CSV, Parquet or JSON-lines file in the folder "
                                  "(it holds trades_ES.csv.gz; compressed files are not read: decompress "
                                  "them first)")
    with pytest.raises(SourceError, match=r"\(it is empty\)"):
        expand_inputs([empty])
    assert expand_inputs([empty], allow_none=True) == []  # a folder watched for files to come
    (packed / "notes.txt").write_text("x")
    (packed / "trades_NQ.csv").write_text(HEADER)
    assert expand_inputs([packed, empty]) == [packed / "trades_NQ.csv"]
