"""``streamer follow DIR``: files dropped into a folder are published as they come.
One unreadable file must not stop the folder, every file's rejected rows are kept,
and the folder's hidden files (its own bookkeeping among them) are not input."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import uuid
from pathlib import Path

import msgpack
import pytest

from tests.support.kafka_io import read_topic_values

pytestmark = pytest.mark.broker

HEADER = "Date,Time,Session,Stream,Instrument,Target,Peak,Direction,Result,Range,Profit\n"


def follow_once(folder: Path, bootstrap: str, topic: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streamer.cli", "follow", str(folder), "--once",
                           "--bootstrap", bootstrap, "--topic", topic, "--rejects", str(cwd / "rejects.csv")],
                          cwd=cwd, env=os.environ.copy(), text=True, capture_output=True, timeout=120)


def test_follow_goes_past_an_unreadable_file_and_keeps_every_rejected_row(kafka_bootstrap, tmp_path):
    topic = f"t{uuid.uuid4().hex[:8]}.day-events"
    folder = tmp_path / "drop"
    folder.mkdir()
    # Files are read in name order: the unreadable one comes between two good ones.
    (folder / "a.csv").write_text(HEADER + "2025-01-02,07:30,S1,ES1,ES,10.0,12.5,Long,Win,9.5,10.0\n"
                                           "2025-01-02,08:00,S1,ES1,ES,10.0,,Long,Maybe,9.5,10.0\n")
    (folder / "b.csv").write_text("Date,Time,Stream,Result,Peak,peak\n2025-01-03,07:30,ES1,Win,1,2\n")
    (folder / "c.csv").write_text(HEADER + "2025-01-03,07:30,S1,ES1,ES,10.0,13.0,Long,Loss,9.5,-10.0\n"
                                           "2025-01-03,10:00,S1,ES1,ES,10.0,,Long,Win,9.5,10.0\n")
    (folder / "._c.csv").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS metadata, not data

    first = follow_once(folder, kafka_bootstrap, topic, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert ("streamer: error: " + str(folder / "b.csv") + ": columns 'Peak' and 'peak' are the same "
            "column peak") in first.stderr
    assert "published 1 day events from a.csv" in first.stdout
    assert "published 1 day events from c.csv" in first.stdout
    assert "._c.csv" not in first.stdout + first.stderr and ".streamer_published" not in first.stdout
    published = [msgpack.unpackb(v) for v in read_topic_values(kafka_bootstrap, topic)]
    assert sorted((e["stream"], e["date"], sorted(e["slots"])) for e in published) == [
        ("ES1", "2025-01-02", ["07:30"]), ("ES1", "2025-01-03", ["07:30"])]
    with (tmp_path / "rejects.csv").open(newline="") as handle:
        rejects = [(Path(r["source"]).name, r["line"]) for r in csv.DictReader(handle)]
    assert rejects == [("a.csv", "3"), ("c.csv", "3")]  # a.csv's reject is still there

    # Nothing changed: nothing published again, the unreadable file not tried again.
    second = follow_once(folder, kafka_bootstrap, topic, tmp_path)
    assert second.returncode == 0, second.stderr
    assert second.stdout == "" and "b.csv" not in second.stderr
    assert len(read_topic_values(kafka_bootstrap, topic)) == 2
