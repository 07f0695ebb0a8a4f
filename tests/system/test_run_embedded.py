"""The README's main job, as a user runs it: ``sequencer run --embedded``, twice.

The first run must write the same decisions.csv and checkpoints as the batch
path (``sequencer replay``, itself checked against an independent fold in
test_sources_and_replay.py); the second continues from the checkpoints and
applies nothing new.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.system.test_sources_and_replay import SAMPLE, checkpoint_docs, read_csv, sequencer_command

pytestmark = pytest.mark.broker


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([*sequencer_command(), *args], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done


def without_saved_offsets(docs: dict) -> dict:
    # Only the live path knows Kafka offsets; everything else must match.
    return {name: {k: v for k, v in doc.items() if k != "source_offsets"} for name, doc in docs.items()}


def test_run_embedded_equals_replay_and_a_second_run_applies_nothing(tmp_path: Path):
    live_state, batch_state = tmp_path / "live-state", tmp_path / "batch-state"
    first = run(tmp_path, "run", "--embedded", str(SAMPLE), "--out", str(tmp_path / "live"),
                "--state-dir", str(live_state))
    assert "15926 decisions" in first.stdout
    run(tmp_path, "replay", str(SAMPLE), "--out", str(tmp_path / "batch"), "--state-dir", str(batch_state))

    live_rows = read_csv(tmp_path / "live" / "decisions.csv")
    assert len(live_rows) == 15926
    assert live_rows == read_csv(tmp_path / "batch" / "decisions.csv")
    # The report is a projection of the decisions: the live path's equals the batch path's.
    live_performance = read_csv(tmp_path / "live" / "performance.csv")
    assert [row["stream"] for row in live_performance][-1] == "all"
    assert live_performance == read_csv(tmp_path / "batch" / "performance.csv")
    assert "performance of these decisions" in first.stdout and "Sharpe" in first.stdout
    live_docs = checkpoint_docs(live_state)
    assert len(live_docs) == 8
    assert all(doc["source_offsets"] for doc in live_docs.values())
    assert without_saved_offsets(live_docs) == without_saved_offsets(checkpoint_docs(batch_state))

    second = run(tmp_path, "run", "--embedded", str(SAMPLE), "--out", str(tmp_path / "again"),
                 "--state-dir", str(live_state))
    assert "0 decisions" in second.stdout and "15926 events were already applied" in second.stdout
    assert read_csv(tmp_path / "again" / "decisions.csv") == []
    assert checkpoint_docs(live_state) == live_docs


SPLIT = "2025-06-01"


def es_inputs(tmp_path: Path) -> list[str]:
    """ES rows before SPLIT ("head"), from it on ("tail"), and all of them ("all")."""
    header, *rows = (SAMPLE / "trades_ES.csv").read_text().splitlines(keepends=True)
    for name, kept in (("head", [r for r in rows if r < SPLIT]), ("tail", [r for r in rows if r >= SPLIT]),
                       ("all", rows)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trades_ES.csv").write_text(header + "".join(kept))
    return rows


def test_a_later_run_with_only_the_new_days_applies_them(tmp_path: Path):
    # Each run starts a fresh in-memory broker: the offsets the checkpoints
    # carry are those of the previous run's log, and must not hide new days.
    rows = es_inputs(tmp_path)
    split = SPLIT
    state = tmp_path / "state"

    run(tmp_path, "run", "--embedded", str(tmp_path / "head"), "--out", str(tmp_path / "o1"), "--state-dir", str(state))
    second = run(tmp_path, "run", "--embedded", str(tmp_path / "tail"), "--out", str(tmp_path / "o2"),
                 "--state-dir", str(state))
    run(tmp_path, "replay", str(tmp_path / "all"), "--out", str(tmp_path / "batch"),
        "--state-dir", str(tmp_path / "batch-state"))

    batch_rows = read_csv(tmp_path / "batch" / "decisions.csv")
    new_rows = [r for r in batch_rows if r["date"] >= split]
    tail_days = {(r.split(",")[3], r.split(",")[0]) for r in rows if r >= split}  # (Stream, Date)
    assert len(new_rows) == len(tail_days) > 0
    assert f"{len(new_rows)} decisions" in second.stdout, second.stdout
    assert read_csv(tmp_path / "o2" / "decisions.csv") == new_rows
    assert without_saved_offsets(checkpoint_docs(state)) == without_saved_offsets(
        checkpoint_docs(tmp_path / "batch-state"))


def test_older_days_sent_after_newer_ones_are_reported_as_dead_letters(tmp_path: Path):
    # The tail first, then the whole history: older days arriving after a
    # stream's last processed date are out of order (SPEC 3) and go to the
    # dead letters. The run must say so, not count them as already applied.
    rows = es_inputs(tmp_path)
    state = tmp_path / "state"
    run(tmp_path, "run", "--embedded", str(tmp_path / "tail"), "--out", str(tmp_path / "o1"), "--state-dir", str(state))
    second = run(tmp_path, "run", "--embedded", str(tmp_path / "all"), "--out", str(tmp_path / "o2"),
                 "--state-dir", str(state))
    days = {(r.split(",")[3], r.split(",")[0]) for r in rows}  # (Stream, Date)
    found = re.search(r"(\d+) decisions .*; (\d+) events were already applied .*; (\d+) dead-lettered to "
                      r"sequencer\.dead-letters \(out of order: (\d+)\)", second.stdout)
    assert found, second.stdout
    decisions, already, letters, out_of_order = map(int, found.groups())
    assert decisions == 0 and letters == out_of_order > 0
    assert decisions + already + letters == len(days)
