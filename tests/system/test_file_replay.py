"""``sequencer replay`` split by stream across processes writes what one process writes.

The single-process replay is checked against hand-worked examples and an
independent fold in test_sources_and_replay.py; here every output of a split
run (decisions.csv, rejects.csv, each checkpoint, the counts) must equal it
byte for byte, on random inputs with bad rows, on resumed states, and on the
real data set through the command line.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.domain import SequencerConfig, SequencerError
from sequencer.adapters.files import file_replay
from sequencer.adapters.files.file_replay import ReplayWatch, replay_files
from sequencer.adapters.files import sources
from sequencer.adapters.files.sources import StreamPartition

from tests.unit.test_csv_columns import csv_files, write as write_csv
from tests.system.test_sources_and_replay import SAMPLE, checkpoint_docs, sequencer_command

CONFIG = SequencerConfig()
HEADER = ["Date", "Time", "Session", "Stream", "Instrument", "Target", "Peak", "Direction", "Result",
          "Range", "Profit"]
STREAMS = ["ES1", "NQ2", "CL1", "GC2", "YM1", "NG2", "ES2", "NQ1"]
SLOTS = {"1": ["07:30", "08:00", "09:00"], "2": ["09:30", "10:00", "10:30", "11:00"]}
DATES = [f"2025-{m:02d}-{d:02d}" for m in (1, 2) for d in range(1, 29)]


@st.composite
def good_rows(draw):
    stream = draw(st.sampled_from(STREAMS))
    number = st.one_of(st.just(""), st.integers(0, 400).map(lambda n: str(n / 4)))
    return [draw(st.sampled_from(DATES)), draw(st.sampled_from(SLOTS[stream[-1]])), "S" + stream[-1],
            stream, stream[:2], draw(number), draw(number), draw(st.sampled_from(["Long", "Short", ""])),
            draw(st.sampled_from(["Win", "Loss", "BE", "NoTrade", "TIME", "loss", "WIN"])),
            draw(number), draw(number)]


@st.composite
def bad_rows(draw):
    """Each breaks one rule: streams bad or unknown, dates, slots, results, numbers, field counts."""
    row = draw(good_rows())
    column, value = draw(st.sampled_from([
        (3, ""), (3, "bad stream!"), (3, "ZZ1"), (0, "2025-02-30"), (0, "yesterday"), (1, "25:00"),
        (8, "Nope"), (8, ""), (6, "-3"), (6, "abc"), (5, "inf"), (4, "NQ"), (2, "S9"), (99, None)]))
    if column == 99:
        return row[:draw(st.integers(1, len(row) - 1))]  # a short row
    row[column] = value
    return row


files = st.lists(st.lists(st.one_of(good_rows(), good_rows(), good_rows(), bad_rows()), max_size=60),
                 min_size=1, max_size=3)


def write_files(folder: Path, contents: list[list[list[str]]], fmt: str = "csv") -> list[Path]:
    """CSV files, or JSON lines with one object per row (a short row lacks the last keys)."""
    folder.mkdir(parents=True)
    paths = []
    for i, rows in enumerate(contents):
        path = folder / f"in{i}.{fmt}"
        with path.open("w", newline="") as handle:
            if fmt == "csv":
                writer = csv.writer(handle)
                writer.writerow(HEADER)
                writer.writerows(rows)
            else:
                for row in rows:
                    handle.write(json.dumps({k: v for k, v in zip(HEADER, row) if v != ""}) + "\n")
        paths.append(path)
    return paths


def run(paths: list[Path], out: Path, jobs: int, *, until: str | None = None,
        resume_from: Path | None = None) -> tuple[dict, dict]:
    store = CheckpointStore(out / "state", CONFIG)
    states = {}
    if resume_from is not None:
        loaded, refused = CheckpointStore(resume_from, CONFIG).load_all()
        assert not refused
        states = {stream: cp.state for stream, cp in loaded.items()}
    summary = replay_files(paths, CONFIG, states, out, store, until=until, jobs=jobs)
    counts = {k: getattr(summary, k) for k in
              ("events", "rows", "streams", "applied", "already_applied", "after_until", "refused")}
    files = {name: (out / name).read_bytes() for name in ("decisions.csv", "rejects.csv")}
    files.update(checkpoint_docs(out / "state"))
    assert set(os.listdir(out)) <= {"decisions.csv", "rejects.csv", "state"}  # no part left behind
    if (out / "state").exists():  # (no valid row: no checkpoint, no folder)
        assert all(name.startswith("state_") for name in os.listdir(out / "state"))  # nor a staging folder
    return counts, files


@settings(max_examples=40, deadline=None)
@given(files, st.integers(2, 4), st.one_of(st.none(), st.sampled_from(DATES)), st.sampled_from(["csv", "jsonl"]))
def test_a_split_replay_writes_exactly_what_one_process_writes(tmp_path_factory, contents, jobs, until, fmt):
    work = tmp_path_factory.mktemp("split")
    paths = write_files(work / "in", contents, fmt)
    one = run(paths, work / "one", 1, until=until)
    split = run(paths, work / "split", jobs, until=until)
    assert split == one
    assert one[0]["rows"] == sum(len(rows) for rows in contents)  # every row counted once


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(csv_files(), min_size=1, max_size=2), st.integers(2, 4), st.one_of(st.none(), st.sampled_from(DATES)))
def test_files_read_by_columns_replay_split_as_on_one_process_and_as_by_rows(tmp_path_factory, monkeypatch,
                                                                             contents, jobs, until):
    # Read by columns (most of these files are clean) and split after the read:
    # the outputs of one process, and those of the row reader.
    work = tmp_path_factory.mktemp("columns")
    paths = [write_csv(work / "in" / f"in{i}.csv", *file) for i, file in enumerate(contents)]
    monkeypatch.setattr(sources, "COLUMNS_MIN_BYTES", 0)
    one = run(paths, work / "one", 1, until=until)
    assert run(paths, work / "split", jobs, until=until) == one
    monkeypatch.setattr(sources, "COLUMNS_MIN_BYTES", 1 << 60)
    assert run(paths, work / "rows", 1, until=until) == one


@settings(max_examples=20, deadline=None)
@given(files, st.integers(2, 3), st.sampled_from(DATES))
def test_a_split_resume_continues_what_one_process_stopped(tmp_path_factory, contents, jobs, until):
    work = tmp_path_factory.mktemp("resume")
    paths = write_files(work / "in", contents)
    run(paths, work / "head", 1, until=until)
    full = run(paths, work / "full", 1)
    resumed = run(paths, work / "tail", jobs, resume_from=work / "head" / "state")
    assert resumed[1] | {"decisions.csv": b"", "rejects.csv": b""} == \
        full[1] | {"decisions.csv": b"", "rejects.csv": b""}  # the same checkpoints
    # the head's days are seen again by step 0: counted (a stream's last day) or refused (earlier)
    assert resumed[0]["applied"] + resumed[0]["already_applied"] + resumed[0]["refused"] == full[0]["applied"]
    # and the split run lists them (rejects.csv) as one process does, byte for byte
    assert resumed == run(paths, work / "tail1", 1, resume_from=work / "head" / "state")


@given(st.text(min_size=1, max_size=12), st.integers(1, 6))
def test_every_stream_belongs_to_exactly_one_partition(stream, count):
    owners = [i for i in range(count) if StreamPartition(i, count).owns(stream)]
    assert len(owners) == 1
    assert [i for i in range(count) if StreamPartition(i, count).owns(None)] == [0]


def test_the_real_data_split_across_processes_equals_one_process(tmp_path: Path):
    outputs = []
    for jobs in ("1", "3"):
        out, state = tmp_path / f"out{jobs}", tmp_path / f"state{jobs}"
        done = subprocess.run([*sequencer_command(), "replay", str(SAMPLE), "--out", str(out),
                               "--state-dir", str(state), "--jobs", jobs],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "15926 applied" in done.stdout and f"({jobs} process" in done.stdout
        outputs.append(((out / "decisions.csv").read_bytes(), (out / "rejects.csv").read_bytes(),
                        checkpoint_docs(state)))
    assert len(outputs[0][2]) == 8
    assert outputs[1] == outputs[0]


def test_an_unreadable_file_fails_the_replay_before_anything_is_written(tmp_path: Path):
    good = write_files(tmp_path / "in", [[["2025-01-02", "07:30", "S1", "ES1", "ES", "", "12", "", "Win",
                                           "", ""]]])[0]
    broken = tmp_path / "in" / "broken.csv"
    broken.write_text("Date,Time,Result\n2025-01-02,07:30,Win\n")
    out = tmp_path / "out"
    with pytest.raises(SequencerError, match="broken.csv: missing columns stream"):
        replay_files([good, broken], CONFIG, {}, out, CheckpointStore(out / "state", CONFIG), jobs=3)
    assert not (out / "state").exists()
    assert sorted(os.listdir(out)) == []


def test_a_partition_that_dies_stops_the_replay_without_hanging(tmp_path: Path, monkeypatch):
    # A partition killed while folding (out of memory, say): nothing else can make a process vanish.
    real_fold = file_replay._fold_partition

    def fold_then_die(events, config, states, decisions_path, *args, **kwargs):
        if decisions_path.name == ".decisions.part1.csv":
            os._exit(9)
        return real_fold(events, config, states, decisions_path, *args, **kwargs)

    monkeypatch.setattr(file_replay, "_fold_partition", fold_then_die)
    paths = write_files(tmp_path / "in", [[[d, "07:30", "S1", s, s[:2], "", "12", "", "Win", "", ""]
                                           for d in DATES for s in ("ES1", "NQ1", "CL1", "YM1")]])
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="replay partition 1 ended without a reply"):
        replay_files(paths, CONFIG, {}, out, CheckpointStore(out / "state", CONFIG), jobs=2)
    assert not (out / "state").exists()  # what the other partition saved was staged, then discarded
    assert sorted(os.listdir(out)) == []


@pytest.mark.parametrize("jobs", [1, 3])
def test_progress_reaches_the_input_size_then_every_event(tmp_path: Path, jobs):
    paths = write_files(tmp_path / "in", [[[d, "07:30", "S1", s, s[:2], "", "12", "", "Win", "", ""]
                                           for d in DATES for s in ("ES1", "NQ1", "CL1", "YM1")]] * 2)
    heard: dict[str, list[int]] = {"read": [], "total": [], "folded": []}
    watch = ReplayWatch(heard["read"].append, heard["total"].append, heard["folded"].append)
    out = tmp_path / "out"
    summary = replay_files(paths, CONFIG, {}, out, CheckpointStore(out / "state", CONFIG), jobs=jobs,
                           watch=watch)
    assert summary.events == len(DATES) * 4
    assert sum(heard["read"]) == sum(p.stat().st_size for p in paths)
    assert heard["total"] == [len(DATES) * 4]
    assert sum(heard["folded"]) == len(DATES) * 4


def test_jobs_below_one_is_refused(tmp_path: Path):
    with pytest.raises(SequencerError, match="--jobs must be at least 1"):
        file_replay.choose_jobs([], 0)
