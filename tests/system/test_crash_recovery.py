"""SIGKILL the worker at random moments of a real-data run; the end result must
be exactly that of `sequencer replay` on the same data.

Expected values come from the batch path (file -> pure fold), which shares
nothing with the worker but the fold: the checkpoints written at the final
clean shutdown, ``sequencer verify`` (the table's changelog and the
checkpoints against a rebuild from the log) and the decisions topic
(deduplicated by (stream, date), repeats identical) are all compared with it.

``SEQUENCER_CRASH_KILLS`` (default 5) sets the number of kills,
``SEQUENCER_CRASH_SEED`` the random seed (default: random, printed).
"""

from __future__ import annotations

import os
import random

import pytest

from sequencer.domain import SequencerConfig
from sequencer.adapters.files.sources import read_day_events

from tests.support.recovery_helpers import SAMPLE, Setup, run_crash_loop

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def test_random_sigkills_change_nothing(kafka_bootstrap, tmp_path):
    kills = int(os.environ.get("SEQUENCER_CRASH_KILLS", "5"))
    seed = int(os.environ.get("SEQUENCER_CRASH_SEED", str(random.randrange(1 << 30))))
    print(f"crash loop: {kills} kills, seed {seed} (SEQUENCER_CRASH_SEED={seed} repeats it)")
    events = read_day_events(sorted(SAMPLE.glob("*.csv")), SequencerConfig()).events
    assert len(events) > 15000
    setup = Setup(kafka_bootstrap, tmp_path / "state")
    report = run_crash_loop(setup, events, kills, tmp_path, seed=seed)
    assert report.kills == kills
    assert report.differences == [], "\n".join(report.differences[:50])
