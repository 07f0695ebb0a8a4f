"""End-to-end decision latency: from a day event's record timestamp (the
producer's create time) to its decision acknowledged by the broker.

A Prometheus histogram (``sequencer_decision_latency_seconds``, cumulative
since the worker started) for /metrics, and the last ``RECENT`` latencies for
the p50/p99 that ``GET /lag``, ``sequencer lag`` and the UI show.

The worker calls ``observe_sent`` once per batch, right after its decisions
are acknowledged::

    runtime.latency.observe_sent(outcome.decisions, events)
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any, Iterable, Sequence

from prometheus_client import CollectorRegistry, Histogram, generate_latest

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
    wanted: dict[str, int] = {}
    for stream in decision_streams:
        wanted[stream] = wanted.get(stream, 0) + 1
    found: list[float] = []
    for stream, count in wanted.items():
        times = by_stream.get(stream, [])
        found.extend(t for t in times[max(len(times) - count, 0):] if t is not None and t > 0)
    return found


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ``values`` by the nearest-rank method; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = math.ceil(round(q * len(ordered), 9))  # round: 0.29 * 100 is 28.999999999999996
    return ordered[min(max(rank, 1), len(ordered)) - 1]


class DecisionLatency:
    """The worker's latency record (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.histogram = Histogram(
            "sequencer_decision_latency_seconds",
            "Seconds from a day event's record timestamp to its decision acknowledged by the broker.",
            buckets=BUCKETS, registry=self.registry)
        self.recent: deque[float] = deque(maxlen=RECENT)

    def observe(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)  # producer and worker clocks may differ by a little
        self.histogram.observe(seconds)
        self.recent.append(seconds)

    def observe_sent(self, decisions: Sequence[Any], events: Iterable[Any], sent_at: float | None = None) -> None:
        """A batch's decisions were acknowledged at ``sent_at`` (now); ``events`` are its
        Faust events (``message.key``, ``message.timestamp`` in seconds)."""
        if not decisions:
            return
        sent_at = time.time() if sent_at is None else sent_at
        records = ((e.message.key.decode(errors="replace") if e.message.key else None, e.message.timestamp)
                   for e in events)
        for created in matched_record_times([d.stream for d in decisions], records):
            self.observe(sent_at - created)

    def summary(self) -> dict[str, Any]:
        """``{"p50": s, "p99": s, "decisions": n}`` over the recent latencies (None when there are none)."""
        values = list(self.recent)
        return {"p50": quantile(values, 0.5), "p99": quantile(values, 0.99), "decisions": len(values)}

    def exposition(self) -> str:
        """The histogram in the Prometheus text format."""
        return generate_latest(self.registry).decode()
