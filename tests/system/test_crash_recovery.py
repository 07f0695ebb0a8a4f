"""SIGKILL the worker at random moments of a real-data run; the end result must
be exactly that of `sequencer replay` on the same data.

Expected values come from the batch path (file -> pure fold), which shares
nothing with the worker but the fold: the checkpoints written at the final
clean shutdown, ``sequencer verify`` (the table's changelog and the
checkpoints against a rebuild from the log) and the decisions topic
(deduplicated by (stream, date), repeats identical) are all compared with it.

``SEQUENCER_CRASH_KILLS`` (default 5) sets the number of kills,
``SEQUENCER_CRASH_SEED`` the random seed (default: random, printed); the
group chaos loop's ``SEQUENCER_CHAOS_ROUNDS`` (default 6) and
``SEQUENCER_CHAOS_SEED`` likewise (``bench/chaos_loop.py`` runs it longer).
"""

from __future__ import annotations

import os
import random

import pytest

from sequencer.adapters.files.sources import read_day_events
from sequencer.adapters.kafka.embedded_broker import EmbeddedBroker
from sequencer.domain import SequencerConfig

from tests.support.recovery_helpers import SAMPLE, Setup, run_crash_loop, run_group_chaos

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


def test_a_group_through_kills_stops_joins_and_broker_freezes_changes_nothing(tmp_path):
    rounds = int(os.environ.get("SEQUENCER_CHAOS_ROUNDS", "6"))
    seed = int(os.environ.get("SEQUENCER_CHAOS_SEED", str(random.randrange(1 << 30))))
    print(f"group chaos: {rounds} rounds, seed {seed} (SEQUENCER_CHAOS_SEED={seed} repeats the incidents)")
    events = read_day_events(sorted(SAMPLE.glob("*.csv")), SequencerConfig()).events
    # A broker of its own: freezing the session's would stall the other tests.
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        setup = Setup(broker.bootstrap, tmp_path / "state")
        report = run_group_chaos(setup, broker, events, rounds, tmp_path, seed=seed, workers=2,
                                 publish_seconds=30.0)
    assert report.kills == rounds
    assert report.differences == [], "\n".join(report.differences[:50])
