"""End-to-end decision latency: from a day event's record timestamp (the
producer's create time) to its decision acknowledged by the broker.

A Prometheus histogram (``sequencer_decision_latency_seconds``, cumulative
since the worker started) for /metrics, and the last ``RECENT`` latencies for
the p50/p99 that ``GET /lag``, ``sequencer lag`` and the UI show.

The worker calls ``observe_sent`` once per batch, right after its decisions
are acknowledged::

    runtime.latency.observe_sent(outcome.decisions, records, sent_at)

A batch's latencies are counted into the buckets together: the histogram keeps
its own exact count per bucket and hands them to ``prometheus_client`` as a
custom collector's ``HistogramMetricFamily`` (its public API for that) when
/metrics is read. ``prometheus_client.Histogram`` has no bulk observe, and its
``observe`` per decision (a bisect, a lock and two increments) was 1.75 us of
the worker's 40 us per event. The text is the one ``Histogram`` writes for
the same values (a property test holds it).
"""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter, deque
from typing import Any, Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from sequencer.app.records import SourceRecord

#: Histogram buckets (seconds): fine below the 100 ms live target, coarse up to
#: the hours a backlog can wait before a worker starts.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0,
           60.0, 300.0, 3600.0)
#: Latencies kept for the quantiles: the last this many decisions.
RECENT = 10_000


def matched_record_times(decision_streams: Sequence[str],
                         records: Iterable[tuple[str | None, float | None]]) -> list[float]:
    """The record timestamp of each decision of a batch.

    ``records`` are the batch's (stream key, timestamp) in offset order. A
    batch may hold records of a stream that gave no decision (a re-delivered
    or duplicate day, a dead letter); those come before the applied ones in
    the normal case (a re-delivery is a prefix), so the k decisions of a
    stream are matched to its last k records. Decisions without a record
    timestamp are left out.
    """
    by_stream: dict[str, list[float | None]] = {}
    for stream, timestamp in records:
        if stream is not None:
            by_stream.setdefault(stream, []).append(timestamp)
    return _last_times(Counter(decision_streams), by_stream)


def _last_times(wanted: Mapping[Any, int], by_stream: Mapping[Any, list]) -> list:
    """For each stream of ``wanted`` (how many decisions it gave), the known times of its
    last that many records (``by_stream``: its record times in offset order)."""
    found: list = []
    for stream, count in wanted.items():
        times = by_stream.get(stream, ())
        found.extend(t for t in times[max(len(times) - count, 0):] if t is not None and t > 0)
    return found


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank method; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(round(q * len(ordered), 9))  # round: 0.29 * 100 is 28.999999999999996
    return ordered[min(max(rank, 1), len(ordered)) - 1]


NAME = "sequencer_decision_latency_seconds"
DOCUMENTATION = "Seconds from a day event's record timestamp to its decision acknowledged by the broker."


class LatencyHistogram(Collector):
    """Counts per bucket, the sum and the creation time of the latency histogram,
    collected as ``prometheus_client`` collects its own ``Histogram``."""

    def __init__(self, buckets: Sequence[float] = BUCKETS) -> None:
        self.bounds = tuple(float(bound) for bound in buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative; the last is +Inf
        self.sum = 0.0
        self.created = time.time()
        self._labels = [floatToGoString(bound) for bound in self.bounds] + ["+Inf"]

    def observe_many(self, values: Sequence[float]) -> None:
        """Count ``values`` (each in the first bucket whose bound it does not exceed)."""
        ordered = sorted(values)
        counts = self.counts
        below = 0
        for index, bound in enumerate(self.bounds):
            upto = bisect.bisect_right(ordered, bound, below)
            counts[index] += upto - below
            below = upto
        counts[-1] += len(ordered) - below
        for value in values:  # in arrival order, as one observe after the other adds them
            self.sum += value

    def collect(self) -> Iterator[Metric]:
        cumulative, buckets = 0, []
        for label, count in zip(self._labels, self.counts):
            cumulative += count
            buckets.append((label, cumulative))
        family = HistogramMetricFamily(NAME, DOCUMENTATION, buckets=buckets, sum_value=self.sum)
        family.add_sample(NAME + "_created", {}, self.created)
        yield family


class DecisionLatency:
    """The worker's latency record (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.histogram = LatencyHistogram()
        self.registry.register(self.histogram)
        self.recent: deque[float] = deque(maxlen=RECENT)

    def observe(self, seconds: float) -> None:
        self.observe_many([seconds])

    def observe_many(self, seconds: Iterable[float]) -> None:
        # max: producer and worker clocks may differ by a little
        values = [value if value > 0.0 else 0.0 for value in seconds]
        if values:
            self.histogram.observe_many(values)
            self.recent.extend(values)

    def observe_sent(self, decisions: Sequence[Any], records: Iterable[SourceRecord],
                     sent_at: float | None = None) -> None:
        """A batch's decisions were acknowledged at ``sent_at`` (now); ``records`` are
        the records it folded, in offset order."""
        if not decisions:
            return
        sent_at = time.time() if sent_at is None else sent_at
        # matched_record_times over the records' key bytes and millisecond times as they
        # are: a batch's thousands of records are neither decoded nor divided, only the
        # matched times are (a decision's stream is the key its record carried).
        by_key: dict[bytes, list[int | None]] = {}
        for record in records:
            if record.key:
                by_key.setdefault(record.key, []).append(record.timestamp_ms)
        wanted = Counter(d.stream.encode() for d in decisions)
        self.observe_many([sent_at - created / 1000 for created in _last_times(wanted, by_key)])

    def summary(self) -> dict[str, Any]:
        """``{"p50": s, "p99": s, "decisions": n}`` over the recent latencies (None when there are none)."""
        values = list(self.recent)
        return {"p50": quantile(values, 0.5), "p99": quantile(values, 0.99), "decisions": len(values)}

    def exposition(self) -> str:
        """The histogram in the Prometheus text format."""
        return generate_latest(self.registry).decode()
