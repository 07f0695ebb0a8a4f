"""``sequencer sweep`` (SPEC 9): every row equals ``replay`` under its configuration + ``report``.

The reference for each row is computed the way a user would get it: the
configuration's own ``replay`` (decisions.csv written to disk), that file read
back by the report's reader, and the report's ``performance_report``; on the
real data through the command line, ``sequencer replay`` and ``sequencer
report --json`` themselves. Equality is exact (floats compared as floats read
from their CSV / JSON text).
"""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.domain.metrics import METRIC_NAMES, performance_report
from sequencer.adapters.files.file_replay import replay_files
from sequencer.adapters.files.record_files import read_decision_file
from sequencer.adapters.files.sources import read_day_events
from sequencer.domain import ConfigError, SequencerConfig
from sequencer.domain.trade_rules import TradeRules
from sequencer.app.replay import replay_events
from sequencer.app.sweep.grid import format_value, parse_grid_argument, plan_grid
from sequencer.app.sweep.runner import SweepWatch, deal, group_cost, run_sweep
from sequencer.app.sweep.sharing import group_points

from tests.system.test_file_replay import CONFIG, files, write_files
from tests.system.test_sources_and_replay import SAMPLE, sequencer_command

#: Axes a random grid draws from: every SPEC 2 key and every rule, a few values each.
AXIS_POOL = {
    "depth": [1, 2, 3, 5, 13],
    "median_position": [1, 2, 3],
    "promotion_days": [0, 1, 3],
    "max_target_pct": [100, 150, 400],
    "target_mode": ["base", "rolling_median", "median_ladder"],
    "time_change": [True, False],
    "no_trade_on_low_median": [True, False],
    "start_slot": [None, "08:00", "10:00"],
    "rules.skip_weekdays": [(), ("Mon",), ("Tue", "Fri")],
    "rules.skip_days_of_month": [(), (1,), (2, 15)],
    "rules.skip_after_loss": [False, True],
    "rules.min_slot_sum": [None, -2, 0, 1.5],
}


@st.composite
def grids(draw):
    keys = draw(st.lists(st.sampled_from(sorted(AXIS_POOL)), min_size=1, max_size=4, unique=True))
    axes = []
    for key in keys:
        values = draw(st.lists(st.sampled_from(AXIS_POOL[key]), min_size=1, max_size=3, unique=True))
        axes.append(parse_grid_argument(f"{key}={','.join(format_value(v) for v in values)}"))
    return axes


def reference_report(paths, point, work: Path) -> dict:
    """``replay`` under the point's config to disk, read back as ``report`` reads it."""
    out = work / point.config.config_id
    if not (out / "decisions.csv").exists():
        store = CheckpointStore(out / "state", point.config)
        replay_files(paths, point.config, {}, out, store)
    decisions = read_decision_file(out / "decisions.csv")
    assert not decisions.problems
    return performance_report(decisions.decisions, point.rules).to_dict()


@settings(max_examples=25, deadline=None)
@given(files, grids(), st.integers(1, 3))
def test_every_row_equals_replay_then_report(tmp_path_factory, contents, axes, jobs):
    work = tmp_path_factory.mktemp("sweep")
    paths = write_files(work / "in", contents)
    try:
        plan = plan_grid(axes, CONFIG, {})
    except ConfigError:  # every combination impossible (depth 1, median_position 2..3)
        assume(False)
    events = read_day_events(paths, CONFIG).events
    outcome = run_sweep(events, group_points(plan.points), jobs=jobs)
    assert [row.point for row in outcome.rows] == list(plan.points)
    for row in outcome.rows:
        expected = reference_report(paths, row.point, work)
        assert row.all == expected["all"]
        assert row.streams == expected["streams"]


def test_impossible_combinations_do_not_stop_the_property():
    # The property above draws depth 1 beside median_position 3: that pair is skipped.
    plan = plan_grid([parse_grid_argument("depth=1,5"), parse_grid_argument("median_position=1,3")], CONFIG, {})
    assert [p.values for p in plan.points] == [(1, 1), (5, 1), (5, 3)] and len(plan.skipped) == 1


def test_progress_counts_configurations_times_events():
    events = read_day_events(sorted(SAMPLE.glob("trades_ES.csv")), CONFIG).events
    plan = plan_grid([parse_grid_argument("depth=9,13"), parse_grid_argument("target_mode=base,median_ladder")],
                     CONFIG, {})
    seen = {"total": 0, "done": 0}
    watch = SweepWatch(on_total=lambda n: seen.__setitem__("total", n),
                       on_progress=lambda n: seen.__setitem__("done", seen["done"] + n))
    outcome = run_sweep(events, group_points(plan.points), jobs=2, watch=watch)
    assert seen == {"total": 4 * len(events), "done": 4 * len(events)}
    assert (outcome.times.folds, outcome.times.evaluations) == (2, 2)  # target_mode shares the fold


def test_folds_are_dealt_by_their_work():
    plan = plan_grid([parse_grid_argument("depth=3,5,7,9,13"),
                      parse_grid_argument("median_position=1,2"),
                      parse_grid_argument("rules.skip_after_loss=true,false")], CONFIG, {})
    groups = group_points(plan.points)
    shares = deal(groups, 3)
    assert sorted(g.config.config_id for share in shares for g in share) == \
        sorted(g.config.config_id for g in groups)
    loads = [sum(group_cost(g) for g in share) for share in shares]
    assert max(loads) - min(loads) <= max(group_cost(g) for g in groups)


# --- the command, on the real data ---------------------------------------------------------------

GRID = ["depth=9,13", "median_position=7,11", "target_mode=base,median_ladder",
        "rules.skip_after_loss=false,true"]


def sweep(tmp_path: Path, *arguments: str, out: str = "sweep") -> subprocess.CompletedProcess:
    return subprocess.run([*sequencer_command(), "sweep", *arguments, "--out", str(tmp_path / out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def cell(value) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("real")
    done = sweep(tmp_path, str(SAMPLE), *(arg for g in GRID for arg in ("--grid", g)), "--jobs", "2",
                 "--top", "3")
    assert done.returncode == 0, done.stderr
    return tmp_path, done


def test_the_sweep_table_is_ranked_and_lists_the_skipped(real_sweep):
    tmp_path, done = real_sweep
    rows = read_csv(tmp_path / "sweep" / "sweep.csv")
    assert list(rows[0]) == ["depth", "median_position", "target_mode", "rules.skip_after_loss", "config_id",
                             *METRIC_NAMES]
    assert len(rows) == 12  # 16 combinations, 4 with median_position 11 beyond depth 9
    profits = [float(r["total_profit_usd"]) for r in rows]
    assert profits == sorted(profits, reverse=True)
    skipped = read_csv(tmp_path / "sweep" / "sweep_skipped.csv")
    assert {(r["depth"], r["median_position"]) for r in skipped} == {("9", "11")} and len(skipped) == 4
    assert all(r["reason"] == "median_position 11 is beyond depth 9" for r in skipped)
    assert "skipped depth=9, median_position=11" in done.stderr
    assert "swept 12 configurations (4 skipped as impossible) over 15926 day events" in done.stdout
    assert "3 folds shared" in done.stdout  # (9,7), (13,7), (13,11): target_mode and rules share
    top = done.stdout.split("top 3 by total_profit_usd:\n", 1)[1].splitlines()
    assert len(top) == 4 and rows[0]["config_id"] in top[1]
    streams = read_csv(tmp_path / "sweep" / "sweep_streams.csv")
    assert len(streams) == 12 * 8  # ES, NQ, YM, CL in two sessions each


@pytest.mark.parametrize("rank", [0, 5, 11])
def test_a_row_equals_sequencer_replay_then_report(real_sweep, rank):
    tmp_path, _ = real_sweep
    row = read_csv(tmp_path / "sweep" / "sweep.csv")[rank]
    config = tmp_path / f"config{rank}.toml"
    config.write_text(f"depth = {row['depth']}\nmedian_position = {row['median_position']}\n"
                      f"target_mode = \"{row['target_mode']}\"\n"
                      f"[rules]\nskip_after_loss = {row['rules.skip_after_loss']}\n")
    out = tmp_path / f"replay{rank}"
    done = subprocess.run([*sequencer_command(), "replay", str(SAMPLE), "--out", str(out), "--config",
                           str(config), "--state-dir", str(tmp_path / f"state{rank}")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([*sequencer_command(), "report", str(out / "decisions.csv"), "--config", str(config),
                           "--json"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {m: row[m] for m in METRIC_NAMES} == {m: cell(v) for m, v in report["all"].items()}
    streams = [r for r in read_csv(tmp_path / "sweep" / "sweep_streams.csv") if r["config_id"] == row["config_id"]
               and r["rules.skip_after_loss"] == row["rules.skip_after_loss"]]
    assert {r["stream"]: {m: r[m] for m in METRIC_NAMES} for r in streams} == \
        {name: {m: cell(v) for m, v in metrics.items()} for name, metrics in report["streams"].items()}


@pytest.mark.parametrize("arguments, message", [
    (["--grid", "depht=9"], "unknown key 'depht'"),
    (["--grid", "depth=0,13"], "depth=0: depth must be an integer >= 1"),
    (["--grid", "rules.skip_weekdays=Mon+Funday"], "'Funday' is not a weekday"),
    (["--grid", "depth=9", "--rank-by", "profit"], "--rank-by 'profit': not a metric"),
    (["--grid", "depth=9", "--jobs", "0"], "--jobs must be at least 1"),
])
def test_bad_grids_are_refused_before_any_work(tmp_path, arguments, message):
    done = sweep(tmp_path, str(SAMPLE), *arguments)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "sweep").exists()


def test_rejected_rows_are_listed_and_the_rest_swept(tmp_path):
    source = tmp_path / "in.csv"
    lines = (SAMPLE / "trades_ES.csv").read_text().splitlines()[:400]
    lines.insert(5, "2018-01-03,07:30,S1,ES1,ES,10.0,,Long,Nope,9.50,10.00")
    source.write_text("\n".join(lines) + "\n")
    done = sweep(tmp_path, str(source), "--grid", "depth=7,9")
    assert done.returncode == 0, done.stderr
    rejects = read_csv(tmp_path / "sweep" / "rejects.csv")
    assert len(rejects) == 1 and rejects[0]["line"] == "6" and "Nope" in rejects[0]["reason"]
    assert len(read_csv(tmp_path / "sweep" / "sweep.csv")) == 2


def test_a_missing_input_is_a_clear_error(tmp_path):
    done = sweep(tmp_path, str(tmp_path / "nothing.csv"), "--grid", "depth=9")
    assert done.returncode == 2 and "no such file or folder" in done.stderr


def test_the_base_config_and_its_rules_are_the_grid_base(tmp_path):
    config = tmp_path / "base.toml"
    config.write_text("depth = 9\n[rules]\nskip_weekdays = [\"Mon\"]\n")
    done = sweep(tmp_path, str(SAMPLE / "trades_ES.csv"), "--config", str(config),
                 "--grid", "rules.skip_after_loss=false,true")
    assert done.returncode == 0, done.stderr
    rows = read_csv(tmp_path / "sweep" / "sweep.csv")
    assert {r["config_id"] for r in rows} == {SequencerConfig(depth=9).config_id}
    events = read_day_events([SAMPLE / "trades_ES.csv"], CONFIG).events
    decisions = []
    replay_events(events, SequencerConfig(depth=9), on_decision=decisions.append)
    by_rule = {r["rules.skip_after_loss"]: r for r in rows}
    for flag in (False, True):
        expected = performance_report(decisions, TradeRules(skip_weekdays=("Mon",), skip_after_loss=flag))
        assert by_rule[format_value(flag)]["trades"] == str(expected.all.trades)


def test_ctrl_c_stops_the_processes_and_writes_nothing(tmp_path):
    process = subprocess.Popen([*sequencer_command(), "sweep", str(SAMPLE), "--out", str(tmp_path / "sweep"),
                                "--grid", "depth=5,6,7,8,9,10,11,12,13,14,15,16", "--grid", "median_position=1,2,3,4,5",
                                "--grid", "time_change=true,false", "--grid", "no_trade_on_low_median=true,false",
                                "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=tmp_path)
    time.sleep(3)  # reading done, folding under way
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert time.monotonic() - started < 4  # the processes are stopped, not waited for
    assert "sweep interrupted; nothing written" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "sweep").exists()
