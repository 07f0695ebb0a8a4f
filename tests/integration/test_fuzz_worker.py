"""A small fuzz run through a live worker (``bench/fuzz_worker.py`` runs 100,000).

3,000 random and adversarial records, one of them over a megabyte: the worker
stays up with no traceback, every valid day event becomes one decision and
every broken record exactly one dead letter, cut to fit.
"""

from __future__ import annotations

import random

import pytest

from tests.support.fuzz_records import BROKEN_FAMILIES, fuzz_records, run_fuzz
from tests.support.recovery_helpers import Setup

pytestmark = pytest.mark.broker


def test_fuzz_run_through_a_live_worker(kafka_bootstrap, tmp_path):
    seed = random.randrange(1 << 30)
    records = fuzz_records(3000, seed)
    assert {r.family for r in records} >= set(BROKEN_FAMILIES) | {"valid", "over a megabyte"}
    report = run_fuzz(Setup(kafka_bootstrap, tmp_path / "state"), records, tmp_path / "worker.log", timeout_s=240)
    assert report.ok, f"seed {seed}: {report.problems}"
    assert report.decisions == report.families["valid"]
    assert report.dead_letters == len(records) - report.families["valid"]
