"""``sequencer replay`` guards the state folder (issue 13, points 4, 5, 6, 9).

- Without ``--resume`` a replay over existing checkpoints is refused before any
  work; ``--fresh`` moves them to a backup folder first.
- ``--resume`` reports a day it cannot apply in rejects.csv, with the worker's reason.
- A split replay whose parent is killed (``kill -9``) or interrupted (Ctrl-C)
  leaves every checkpoint as it was; the partition processes end with the parent.

The kill tests run the real command on a real input of many streams and act
on the processes from outside, as a user would.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sequencer.cli.main import main

from tests.system.test_sources_and_replay import ROWS, checkpoint_docs, read_csv, sequencer_command, write_csv

ES1_DAYS = [r for r in ROWS if r[3] == "ES1"]


def replay(*args) -> int:
    return main(["replay", *map(str, args)])


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_replay_over_existing_checkpoints_is_refused_without_resume_or_fresh(tmp_path: Path, capsys):
    state = tmp_path / "state"
    assert replay(write_csv(tmp_path / "all.csv", ROWS), "--out", tmp_path / "o1", "--state-dir", state) == 0
    before = file_bytes(state)
    assert len(before) == 2
    capsys.readouterr()

    # one later day only: before the guard, this replaced ES1's 3-event state with a 1-event one
    later = write_csv(tmp_path / "later.csv", [["2025-01-07", "07:30", "S1", "ES1", "ES", 10, 9, "L", "Win", 1, 1]])
    assert replay(later, "--out", tmp_path / "o2", "--state-dir", state) == 2
    err = capsys.readouterr().err
    assert f"{state} holds 2 checkpoints" in err and "--resume" in err and "--fresh" in err
    assert "nothing was written" in err
    assert file_bytes(state) == before
    assert not (tmp_path / "o2").exists()  # refused before any work

    # --resume goes on from them
    assert replay(later, "--out", tmp_path / "o3", "--state-dir", state, "--resume") == 0
    es1 = json.loads((state / "state_ES_ES1.json").read_text())
    assert (es1["last_processed_date"], es1["events_applied"]) == ("2025-01-07", 4)


def test_fresh_moves_the_old_checkpoints_to_a_backup_folder(tmp_path: Path, capsys):
    state = tmp_path / "state"
    data = write_csv(tmp_path / "all.csv", ROWS)
    assert replay(data, "--out", tmp_path / "o1", "--state-dir", state) == 0
    first = file_bytes(state)
    capsys.readouterr()
    es1_only = write_csv(tmp_path / "es1.csv", ES1_DAYS[:3])

    assert replay(es1_only, "--out", tmp_path / "o2", "--state-dir", state, "--fresh") == 0
    err = capsys.readouterr().err
    backups = sorted(p for p in state.iterdir() if p.is_dir())
    assert len(backups) == 1 and backups[0].name.startswith("backup.")
    assert f"--fresh: moved 2 checkpoints from {state} to {backups[0]}" in err
    assert file_bytes(backups[0]) == first  # every old file, byte for byte
    assert sorted(file_bytes(state)) == ["state_ES_ES1.json"]  # started over: NQ2 is gone from the folder
    assert json.loads((state / "state_ES_ES1.json").read_text())["events_applied"] == \
        len({row[0] for row in ES1_DAYS[:3]})

    # a second --fresh in the same second gets its own folder; the backups are no checkpoints
    assert replay(es1_only, "--out", tmp_path / "o3", "--state-dir", state, "--fresh") == 0
    assert len([p for p in state.iterdir() if p.is_dir()]) == 2
    capsys.readouterr()
    assert main(["state", "list", "--state-dir", str(state), "--json"]) == 0
    assert [row["stream"] for row in json.loads(capsys.readouterr().out)] == ["ES1"]

    # --fresh on an empty folder has nothing to move; --resume and --fresh exclude each other
    assert replay(es1_only, "--out", tmp_path / "o4", "--state-dir", tmp_path / "empty", "--fresh") == 0
    assert not [p for p in (tmp_path / "empty").iterdir() if p.is_dir()]
    with pytest.raises(SystemExit):
        replay(es1_only, "--out", tmp_path / "o5", "--state-dir", state, "--fresh", "--resume")


def test_resume_reports_a_corrected_row_for_an_applied_day_in_rejects(tmp_path: Path, capsys):
    state = tmp_path / "state"
    assert replay(write_csv(tmp_path / "all.csv", ROWS), "--out", tmp_path / "o1", "--state-dir", state) == 0
    before = checkpoint_docs(state)
    capsys.readouterr()
    # ES1 was applied through 2025-01-06; a corrected row for 2025-01-02 cannot be applied
    fix = write_csv(tmp_path / "fix.csv", [["2025-01-02", "07:30", "S1", "ES1", "ES", 10, 30, "L", "Loss", 1, 1]])
    assert replay(fix, "--out", tmp_path / "o2", "--state-dir", state, "--resume") == 0
    out = capsys.readouterr().out
    assert "0 applied" in out and "1 rejected (1 at or before a stream's last processed date)" in out
    rejects = read_csv(tmp_path / "o2" / "rejects.csv")
    assert [(r["stream"], r["date"], r["reason"]) for r in rejects] == [
        ("ES1", "2025-01-02", "out of order: ES1 2025-01-02 is before the last processed date 2025-01-06")]
    raw = json.loads(rejects[0]["raw"])
    assert raw["slots"]["07:30"]["result"] == "Loss" and raw["slots"]["07:30"]["peak"] == 30
    assert checkpoint_docs(state) == before  # nothing applied: the states are as they were


# --- killing and interrupting a split replay ------------------------------------------------

SESSIONS = 40  # x 6 instruments = 240 streams
DAYS = 260
INSTRUMENTS = {"ES": 10.0, "NQ": 50.0, "YM": 100.0, "CL": 0.5, "GC": 5.0, "NG": 0.05}


@pytest.fixture(scope="module")
def many_streams(tmp_path_factory) -> tuple[Path, Path]:
    """A config with SESSIONS sessions and one CSV of 240 streams x DAYS days (about 11 MB)."""
    folder = tmp_path_factory.mktemp("many")
    config = folder / "many.toml"
    config.write_text("[sessions]\n" + "".join(f'S{s} = ["07:30", "08:00", "09:00"]\n'
                                               for s in range(1, SESSIONS + 1)))
    data = folder / "many.csv"
    rng = random.Random(13)
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Date", "Time", "Session", "Stream", "Instrument", "Target", "Peak", "Direction",
                         "Result", "Range", "Profit"])
        for day in range(DAYS):
            date = f"{1990 + day // 240}-{1 + day % 240 // 20:02d}-{1 + day % 20:02d}"
            for instrument, base in INSTRUMENTS.items():
                for session in range(1, SESSIONS + 1):
                    for slot in ("07:30", "08:00", "09:00"):
                        writer.writerow([date, slot, f"S{session}", f"{instrument}{session}", instrument, base,
                                         round(rng.uniform(0, 6) * base, 2), "Long",
                                         rng.choice(("Win", "Loss", "BE")), 1, 0])
    return config, data


def start_replay(many: tuple[Path, Path], state: Path, out: Path, *extra: str) -> subprocess.Popen:
    config, data = many
    return subprocess.Popen([*sequencer_command(), "replay", str(data), "--out", str(out), "--state-dir",
                             str(state), "--config", str(config), "--config-name", "many", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as a terminal's job


def head_checkpoints(many: tuple[Path, Path], state: Path, tmp_path: Path) -> dict[str, bytes]:
    """Checkpoints of every stream as of the first days, as the starting point a kill must keep."""
    done = start_replay(many, state, tmp_path / "head", "--until", "1990-01-03", "--jobs", "2")
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    before = file_bytes(state / "many")
    assert len(before) == SESSIONS * len(INSTRUMENTS)
    return before


def wait_until_folding(process: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    """Until a partition has written decisions: the input is read, the fold is under way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if out.exists() and any(p.stat().st_size > 0 for p in out.glob("*decisions*")):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.005)
    raise AssertionError("the replay never started folding")


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has ended; only its exit status is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_split_replay_keeps_the_checkpoints_and_ends_the_children(many_streams, tmp_path: Path):
    state = tmp_path / "state"
    before = head_checkpoints(many_streams, state, tmp_path)
    process = start_replay(many_streams, state, tmp_path / "out", "--resume", "--jobs", "2")
    wait_until_folding(process, tmp_path / "out")
    children = children_of(process.pid)
    assert len(children) == 2
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(c) for c in children), "a partition went on after its parent died"
    assert file_bytes(state / "many") == before  # no checkpoint moved past decisions that were never merged
    assert not (tmp_path / "out" / "decisions.csv").exists()

    # the next --resume applies everything after the head again: nothing was lost
    again = start_replay(many_streams, state, tmp_path / "again", "--resume", "--jobs", "2")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    streams = SESSIONS * len(INSTRUMENTS)
    assert f" {(DAYS - 3) * streams} applied" in out, out
    assert len(read_csv(tmp_path / "again" / "decisions.csv")) == (DAYS - 3) * streams
    assert not [p for p in (state / "many").iterdir() if p.is_dir()]  # the dead run's staging is gone


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_leaves_the_checkpoints_as_they_were_and_says_so(many_streams, tmp_path: Path, jobs):
    state = tmp_path / "state"
    before = head_checkpoints(many_streams, state, tmp_path)
    process = start_replay(many_streams, state, tmp_path / "out", "--resume", "--jobs", jobs)
    wait_until_folding(process, tmp_path / "out")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, out + err
    assert (f"sequencer: replay interrupted: no checkpoint was written to {state / 'many'} and "
            f"{tmp_path / 'out' / 'decisions.csv'} was not written") in err
    assert "Traceback" not in err
    assert file_bytes(state / "many") == before
    assert sorted(os.listdir(tmp_path / "out")) == []  # no partial or part files left


def test_ctrl_c_while_the_checkpoints_move_into_place_waits_for_all_of_them(tmp_path: Path, monkeypatch):
    # The one step after which checkpoints change: a SIGINT there must not leave
    # some streams moved and others not. It is held until the step is over.
    from sequencer.adapters.files import state_folder
    from sequencer.adapters.files.checkpoints import CheckpointStore
    from sequencer.domain import SequencerConfig
    from sequencer.adapters.files.file_replay import replay_files

    real_commit = state_folder.StagedCheckpoints.commit

    def interrupted_commit(self):
        os.kill(os.getpid(), signal.SIGINT)  # arrives in the middle of the step
        return real_commit(self)

    monkeypatch.setattr(state_folder.StagedCheckpoints, "commit", interrupted_commit)
    store = CheckpointStore(tmp_path / "state", SequencerConfig())
    summary = replay_files([write_csv(tmp_path / "in.csv", ROWS)], SequencerConfig(), {}, tmp_path / "out", store)
    assert summary.interrupted
    assert sorted(p.name for p in store.files()) == ["state_ES_ES1.json", "state_NQ_NQ2.json"]
    assert len(read_csv(tmp_path / "out" / "decisions.csv")) == 5
    assert os.listdir(store.folder) == sorted(p.name for p in store.files())  # no staging folder left

    # without a SIGINT nothing is flagged, and the usual handler is back
    monkeypatch.setattr(state_folder.StagedCheckpoints, "commit", real_commit)
    store = CheckpointStore(tmp_path / "state2", SequencerConfig())
    assert not replay_files([tmp_path / "in.csv"], SequencerConfig(), {}, tmp_path / "out2", store).interrupted
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
