"""Ctrl-C (SIGINT to the process group, as a terminal sends it) on `streamer publish`
and `sequencer run --embedded`: a message saying what happened, exit 130."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sequencer.cli.main import main as sequencer_main  # noqa: F401 - the CLI imports cleanly

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"

pytestmark = pytest.mark.broker


def _start(command: list[str], tmp_path: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **(env or {})}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def _interrupt(process: subprocess.Popen, timeout_s: float = 90) -> tuple[int, str, str]:
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=timeout_s)
    return process.returncode, out, err


def test_ctrl_c_on_publish_says_how_much_was_acknowledged(kafka_bootstrap, tmp_path):
    topic = f"t{uuid.uuid4().hex[:8]}.day-events"
    process = _start([sys.executable, "-m", "streamer.cli", "publish", str(SAMPLE / "trades_ES.csv"),
                      "--bootstrap", kafka_bootstrap, "--topic", topic, "--rate", "50"], tmp_path)
    time.sleep(6)  # reading the file and connecting, then a few events a second
    assert process.poll() is None, process.communicate()
    code, _, err = _interrupt(process)
    assert code == 130, err
    match = re.search(r"interrupted: (\d+) of (\d+) day events were acknowledged", err)
    assert match, err
    assert int(match.group(1)) < int(match.group(2))
    assert "Traceback" not in err and "again is safe" in err


@pytest.mark.slow
def test_ctrl_c_on_run_embedded_says_the_worker_stopped(tmp_path):
    process = _start([sys.executable, "-m", "sequencer.cli.main", "run", "--embedded", str(SAMPLE),
                      "--out", str(tmp_path / "out"), "--state-dir", str(tmp_path / "state")], tmp_path)
    deadline = time.monotonic() + 90
    log = tmp_path / "out" / "worker.log"
    while not (log.exists() and log.stat().st_size):  # the worker is up and logging
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.5)
    code, _, err = _interrupt(process, timeout_s=120)
    assert code == 130, err
    assert "sequencer run: interrupted" in err and "decisions.csv was not written" in err, err
    assert "Traceback" not in err, err
    assert not (tmp_path / "out" / "decisions.csv").exists()
