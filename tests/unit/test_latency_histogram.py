"""The decision latency histogram counts a batch's latencies together: its /metrics
text must be what ``prometheus_client.Histogram`` writes for the same values,
observed one by one (the library's own class is the independent check)."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sequencer.app.latency import BUCKETS, NAME, DecisionLatency

latencies = st.floats(min_value=0.0, max_value=1e5, allow_nan=False)
#: Values on and next to the bucket bounds, where "<=" and "<" part.
edges = st.sampled_from(BUCKETS).flatmap(
    lambda bound: st.sampled_from([bound, math.nextafter(bound, 0.0), math.nextafter(bound, math.inf)]))


def samples(text: str) -> dict[tuple[str, tuple], float]:
    family = {f.name: f for f in text_string_to_metric_families(text)}[NAME]
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples
            if not s.name.endswith("_created")}


@given(st.lists(st.lists(st.one_of(latencies, edges, st.floats(-5.0, 0.0)), max_size=60), max_size=6))
def test_batched_counts_are_the_library_histograms_one_by_one(batches):
    ours = DecisionLatency()
    registry = CollectorRegistry()
    theirs = Histogram(NAME, "same", buckets=BUCKETS, registry=registry)
    for values in batches:
        ours.observe_many(values)
        for value in values:
            theirs.observe(max(value, 0.0))  # the clocks of producer and worker may differ a little
    got, expected = samples(ours.exposition()), samples(generate_latest(registry).decode())
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        if key[0].endswith("_sum"):
            assert math.isclose(got[key], value, rel_tol=1e-12, abs_tol=1e-9)
        else:
            assert got[key] == value, key
    assert len(ours.recent) == min(sum(len(values) for values in batches), ours.recent.maxlen)


def test_the_text_has_the_created_sample_and_help_line():
    text = DecisionLatency().exposition()
    assert f"# HELP {NAME} Seconds from a day event's record timestamp" in text
    assert f"# TYPE {NAME} histogram" in text
    assert f"{NAME}_created " in text and f'{NAME}_bucket{{le="+Inf"}} 0.0' in text
