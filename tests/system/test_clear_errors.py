"""Clear errors for the file cases of issue 13 point 8, through the real CLI.

Each is one line on stderr naming the file and the problem, a non-zero exit,
and the traceback only with ``-v``; a bad byte costs its row, not the run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import msgpack
import pytest

from tests.support.recovery_helpers import ROOT, Setup
from tests.support.kafka_io import read_topic_values

GOOD_CSV = "Date,Time,Stream,Result,Peak\n2025-01-02,07:30,ES1,Win,12\n2025-01-02,07:30,CL1,Win,1\n"


def sequencer(*args: str, cwd: Path, env: dict | None = None, user: int | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sequencer.cli.main", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = lines[0]
    assert line.startswith("sequencer: error: ")
    for word in words:
        assert word in line, line
    return line


def test_a_non_utf8_byte_costs_its_row_with_file_and_line(tmp_path):
    source = tmp_path / "trades.csv"
    source.write_bytes(b"Date,Time,Stream,Result,Peak\n2025-01-02,07:30,ES1,Win,12\n"
                       b"2025-01-03,07:30,ES1,W\xefn,12\n2025-01-06,07:30,ES1,Loss,3\n")
    result = sequencer("replay", str(source), "--out", "out", "--state-dir", "st", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with (tmp_path / "out/rejects.csv").open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["source"], r["line"], r["reason"]) for r in rejects] == [
        (str(source), "3", "not UTF-8: byte 0xef at character 23")]
    assert "\\xef" in rejects[0]["raw"]                  # the bad byte shown, the file stays UTF-8
    with (tmp_path / "out/decisions.csv").open(encoding="utf-8") as handle:
        assert [row["date"] for row in csv.DictReader(handle)] == ["2025-01-02", "2025-01-06"]


def test_a_deeply_nested_json_line_is_rejected_and_the_rest_replayed(tmp_path):
    source = tmp_path / "events.jsonl"
    deep = b'{"stream":"ES1","date":"2025-01-03","slots":{"07:30":' + b"[" * 30000 + b"]" * 30000 + b"}}"
    good = [json.dumps({"stream": "ES1", "date": d, "slots": {"07:30": {"result": "Win", "peak": 12}}}).encode()
            for d in ("2025-01-02", "2025-01-06")]
    source.write_bytes(b"\n".join([good[0], deep, good[1]]) + b"\n")
    result = sequencer("replay", str(source), "--out", "out", "--state-dir", "st", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with (tmp_path / "out/rejects.csv").open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["line"], r["reason"]) for r in rejects] == [("2", "malformed JSON: nested deeper than 16 levels")]
    assert "2 applied" in result.stdout


def test_a_corrupt_parquet_file_is_named(tmp_path):
    (tmp_path / "trades.parquet").write_bytes(b"PAR1 this is not parquet")
    result = sequencer("replay", "trades.parquet", "--out", "out", "--state-dir", "st", cwd=tmp_path)
    one_line_error(result, "trades.parquet", "not a readable Parquet file")
    assert result.returncode == 2


def test_the_traceback_only_with_v(tmp_path):
    (tmp_path / "trades.parquet").write_bytes(b"PAR1 this is not parquet")
    result = sequencer("-v", "replay", "trades.parquet", "--out", "out", "--state-dir", "st", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("sequencer: error: trades.parquet")


def test_a_folder_where_a_checkpoint_should_be_is_refused_before_any_is_written(tmp_path):
    (tmp_path / "trades.csv").write_text(GOOD_CSV)
    (tmp_path / "st/state_ES_ES1.json").mkdir(parents=True)
    result = sequencer("replay", "trades.csv", "--out", "out", "--state-dir", "st", cwd=tmp_path)
    one_line_error(result, "st/state_ES_ES1.json", "is a folder")
    assert sorted(p.name for p in (tmp_path / "st").iterdir()) == ["state_ES_ES1.json"]  # CL1 not written
    # `state list` shows it among the refused (it listed nothing at all, exit 0).
    listed = sequencer("state", "list", "--state-dir", "st", cwd=tmp_path)
    assert listed.returncode == 2, listed.stdout + listed.stderr
    assert ("REFUSED  st/state_ES_ES1.json: is a folder where a checkpoint file should be; move it away "
            "and run again") in listed.stdout


@pytest.mark.parametrize("flag", ["--out", "--state-dir"])
def test_out_or_state_dir_naming_a_file(tmp_path, flag):
    (tmp_path / "trades.csv").write_text(GOOD_CSV)
    (tmp_path / "afile").write_text("not a folder\n")
    folders = {"--out": "out", "--state-dir": "st", flag: "afile"}
    result = sequencer("replay", "trades.csv", "--out", folders["--out"], "--state-dir", folders["--state-dir"],
                       cwd=tmp_path)
    one_line_error(result, "afile", "is a file, not a folder")
    assert (tmp_path / "afile").read_text() == "not a folder\n"


def test_a_full_disk_names_the_file(tmp_path):
    # /dev/full fails every write with ENOSPC: a real full disk for the file replay writes its
    # decisions to before it moves them into place as decisions.csv.
    (tmp_path / "trades.csv").write_text(GOOD_CSV)
    (tmp_path / "out").mkdir()
    (tmp_path / "out/.decisions.csv.partial").symlink_to("/dev/full")
    result = sequencer("replay", "trades.csv", "--out", "out", "--state-dir", "st", cwd=tmp_path)
    one_line_error(result, "out/.decisions.csv.partial", "No space left on device")
    assert not (tmp_path / "out/decisions.csv").exists()
    assert not list((tmp_path / "st").glob("state_*"))  # no checkpoint moved past undecided days


def test_verify_without_a_broker_says_so_in_one_line(tmp_path):
    result = sequencer("verify", "--bootstrap", "127.0.0.1:1", "--state-dir", "st", cwd=tmp_path)
    one_line_error(result, "broker 127.0.0.1:1 unreachable")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run the worker as an unprivileged user")
def test_a_read_only_state_folder_stops_the_worker_at_start():
    # As root every folder is writable: the worker runs as nobody, the folder is root's and read-only
    # (in a folder of its own under /tmp, as pytest's temporary folders are private to root).
    base = Path(tempfile.mkdtemp(prefix="sequencer-ro-", dir="/tmp"))
    try:
        base.chmod(0o755)
        folder = base / "state"
        folder.mkdir(mode=0o555)
        result = sequencer("worker", "--state-dir", str(folder), "--bootstrap", "127.0.0.1:1", cwd=base,
                           user=65534, env={"HOME": str(base)})
        one_line_error(result, f"state folder {folder} is not writable", "Permission denied")
        assert list(folder.iterdir()) == []
    finally:
        shutil.rmtree(base)


# --- the broker tier: streamer publish ------------------------------------------------------

@pytest.mark.broker
def test_streamer_publish_rejects_a_hostile_jsonl_row_and_publishes_the_rest(kafka_bootstrap, tmp_path):
    setup = Setup(kafka_bootstrap, tmp_path / "state")
    setup.create_topics()
    source = tmp_path / "events.jsonl"
    deep = b'{"stream":"ES1","date":"2025-01-03","slots":{"07:30":' + b"[" * 30000 + b"]" * 30000 + b"}}"
    rows = [b'{"Date":"2025-01-02","Time":"07:30","Stream":"ES1","Result":"Win","Peak":12}', deep,
            b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":{"result":"Win","direction":"\\ud800"}}}',
            b'{"Date":"2025-01-07","Time":"07:30","Stream":"ES1\\n","Result":"Win"}',
            b'{"Date":"2205-01-09","Time":"07:30","Stream":"ES1","Result":"Win"}',
            b'{"Date":"2025-01-08","Time":"07:30","Stream":"ES1","Result":"Loss","Peak":3}']
    source.write_bytes(b"\n".join(rows) + b"\n")
    result = subprocess.run([sys.executable, "-m", "streamer.cli", "publish", str(source), "--bootstrap",
                             kafka_bootstrap, "--topic", setup.topic_events, "--rejects", str(tmp_path / "rej.csv")],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "4 rows rejected" in result.stderr
    with (tmp_path / "rej.csv").open(encoding="utf-8") as handle:
        reasons = {int(r["line"]): r["reason"] for r in csv.DictReader(handle)}
    assert sorted(reasons) == [2, 3, 4, 5]
    assert "nested deeper" in reasons[2] and "direction" in reasons[3]
    assert "stream name" in reasons[4] and "in the future" in reasons[5]
    published = [msgpack.unpackb(v, raw=False) for v in read_topic_values(kafka_bootstrap, setup.topic_events)]
    assert [(e["stream"], e["date"]) for e in published] == [("ES1", "2025-01-02"), ("ES1", "2025-01-08")]


def test_a_far_future_row_is_rejected_and_later_real_days_apply_on_resume(tmp_path):
    """Issue 13 point 5: a row dated 2205-01-09 locked the stream out of every later --resume."""
    (tmp_path / "first.csv").write_text("Date,Time,Stream,Result,Peak\n2025-01-02,07:30,ES1,Win,12\n"
                                        "2205-01-09,07:30,ES1,Win,12\n")
    (tmp_path / "next.csv").write_text("Date,Time,Stream,Result,Peak\n2025-01-03,07:30,ES1,Loss,3\n")
    first = sequencer("replay", "first.csv", "--out", "o1", "--state-dir", "st", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    with (tmp_path / "o1/rejects.csv").open(encoding="utf-8") as handle:
        rejects = list(csv.DictReader(handle))
    assert [(r["line"], r["date"]) for r in rejects] == [("3", "")]
    assert "2205-01-09 is in the future" in rejects[0]["reason"]
    resumed = sequencer("replay", "next.csv", "--out", "o2", "--state-dir", "st", "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "1 applied" in resumed.stdout
    state = json.loads((tmp_path / "st/state_ES_ES1.json").read_text())
    assert (state["last_processed_date"], state["events_applied"]) == ("2025-01-03", 2)
