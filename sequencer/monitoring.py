"""What monitoring shows, as pure functions: stream freshness, the lag document,
the processing rate from samples, and the Prometheus text of the worker's metrics.

Shared by the worker's HTTP views (`sequencer.web_views`), ``sequencer lag``
and the UI's data layer, so the three show the same numbers in the same shape.
No clock is read here: callers pass ``today`` and ``now``. No Kafka, no Faust.

The lag document (``GET /lag`` and ``sequencer lag --json``)::

    {"group": "sequencer-default", "topic": "sequencer.day-events",
     "total_lag": 12,
     "partitions": [{"topic": ..., "partition": 0, "committed": 40 | null,
                     "earliest": 0, "end": 52, "lag": 12, "note": ""}, ...],
     "processing_rate": 950.0 | null,       # events per second
     "rate_source": "worker" | "samples" | null,
     "catch_up_seconds": 0.013 | null,      # total_lag / rate; 0 when no lag
     "streams": [ {stream row, see stream_row}, ... ],
     "streams_source": "worker" | "checkpoints" | null,
     "measured_at": "2025-09-20T10:00:00+00:00",
     "notes": ["..."]}
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Iterable, Mapping, Sequence

from .domain import StreamState
from .lag import LagReport


def age_days(last_processed_date: str | None, today: dt.date) -> int | None:
    """Whole days between a stream's last processed date and ``today`` (None if never)."""
    if not last_processed_date:
        return None
    return (today - dt.date.fromisoformat(last_processed_date[:10])).days


def stream_row(state: StreamState, today: dt.date, saved_at: str | None = None) -> dict[str, Any]:
    """One line of ``GET /streams``: where the stream stands and how fresh it is."""
    return {
        "stream": state.stream,
        "instrument": state.instrument,
        "session": state.session,
        "last_processed_date": state.last_processed_date,
        "age_days": age_days(state.last_processed_date, today),
        "events_applied": state.events_applied,
        "current_time": state.current_time,
        "current_target": state.current_target,
        "no_trade_next": state.no_trade_next,
        "saved_at": saved_at,
    }


def rate_from_samples(samples: Sequence[tuple[float, int]]) -> float | None:
    """Events per second from successive ``(monotonic seconds, committed total)`` samples.

    Uses the first and the last sample; None with fewer than two or no time
    between them. A committed total that went down (a reset group) gives None.
    """
    if len(samples) < 2:
        return None
    (t0, c0), (t1, c1) = samples[0], samples[-1]
    if t1 <= t0 or c1 < c0:
        return None
    return (c1 - c0) / (t1 - t0)


def catch_up_seconds(total_lag: int, rate: float | None) -> float | None:
    """Seconds to consume the lag at ``rate``: 0 without lag, None without a rate."""
    if total_lag <= 0:
        return 0.0
    if rate is None or not rate > 0:
        return None
    return total_lag / rate


def committed_total(report: LagReport) -> int:
    """Records the group has consumed, summed over partitions (what the rate is taken of)."""
    return sum(p.committed if p.committed is not None else p.earliest for p in report.partitions)


def lag_document(report: LagReport | None, *, topic: str, group: str,
                 rate: float | None, rate_source: str | None,
                 streams: Iterable[Mapping[str, Any]] = (), streams_source: str | None = None,
                 measured_at: str, error: str | None = None) -> dict[str, Any]:
    """The document of ``GET /lag`` and ``sequencer lag --json`` (see the module docstring)."""
    notes: list[str] = []
    if report is None:
        partitions: list[dict[str, Any]] = []
        total = None
        notes.append(f"offsets not available: {error}" if error else "offsets not available")
    else:
        doc = report.to_dict()
        partitions = doc["partitions"]
        total = doc["total_lag"]
        if not partitions:
            notes.append(f"topic {topic} has no partitions (does it exist?)")
        for row in partitions:
            if row["note"]:
                notes.append(f"{row['topic']}[{row['partition']}]: {row['note']}")
    return {
        "group": group,
        "topic": topic,
        "total_lag": total,
        "partitions": partitions,
        "processing_rate": rate,
        "rate_source": rate_source if rate is not None else None,
        "catch_up_seconds": catch_up_seconds(total, rate) if total is not None else None,
        "streams": [dict(s) for s in streams],
        "streams_source": streams_source,
        "measured_at": measured_at,
        "notes": notes,
    }


# --- Prometheus text exposition format (version 0.0.4) -------------------------

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label_value(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float | int) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Metrics:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, Any], float | int]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                inner = ",".join(f'{k}="{_label_value(v)}"' for k, v in labels.items())
                self.lines.append(f"{name}{{{inner}}} {_number(value)}")
            else:
                self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def prometheus_text(*, lag: LagReport | None, counters: Mapping[str, Any], rate: float,
                    checkpoint_ages: Mapping[str, float], last_checkpoint_age: float | None,
                    streams: Sequence[Mapping[str, Any]]) -> str:
    """The worker's metrics. ``counters`` is ``ProcessingCounters.as_dict()``;
    ``checkpoint_ages`` maps stream -> seconds since its checkpoint file was written."""
    m = _Metrics()
    if lag is not None:
        m.family("sequencer_consumer_lag", "gauge",
                 "Records of the event topic not yet committed by the worker group, per partition.",
                 [({"topic": p.topic, "partition": p.partition}, p.lag) for p in lag.partitions])
        m.family("sequencer_consumer_lag_total", "gauge",
                 "Records of the event topic not yet committed by the worker group.",
                 [({}, lag.total_lag)])
        m.family("sequencer_log_end_offset", "gauge", "Log end offset of the event topic, per partition.",
                 [({"topic": p.topic, "partition": p.partition}, p.end) for p in lag.partitions])
        m.family("sequencer_committed_offset", "gauge",
                 "Committed offset of the worker group, per partition (absent before the first commit).",
                 [({"topic": p.topic, "partition": p.partition}, p.committed)
                  for p in lag.partitions if p.committed is not None])
    m.family("sequencer_records_total", "counter",
             "Event records read by this worker since it started.", [({}, counters.get("records", 0))])
    m.family("sequencer_events_applied_total", "counter",
             "Day events applied (decisions emitted) by this worker since it started.",
             [({}, counters.get("applied", 0))])
    reasons = counters.get("dead_letter_reasons") or {}
    m.family("sequencer_dead_letters_total", "counter",
             "Records sent to the dead-letter topic since the worker started, by reason.",
             [({"reason": r}, n) for r, n in sorted(reasons.items())])
    m.family("sequencer_duplicates_total", "counter",
             "Events for a stream's last processed date with the same content, skipped.",
             [({}, counters.get("duplicates", 0))])
    m.family("sequencer_redeliveries_total", "counter",
             "Records below a stream's source offsets (already applied before a restart), skipped.",
             [({}, counters.get("redelivered", 0))])
    m.family("sequencer_replaced_offsets_total", "counter",
             "Stream offsets dropped because a newer day came from below them: the event topic was "
             "replaced (recreated, or a fresh in-memory broker).",
             [({}, counters.get("replaced_offsets", 0))])
    m.family("sequencer_processing_rate", "gauge",
             "Records folded per second over the last 30 seconds.", [({}, rate)])
    m.family("sequencer_checkpoint_age_seconds", "gauge",
             "Seconds since the stream's checkpoint file was last written.",
             [({"stream": s}, age) for s, age in sorted(checkpoint_ages.items())])
    if last_checkpoint_age is not None:
        m.family("sequencer_last_checkpoint_write_age_seconds", "gauge",
                 "Seconds since this worker last wrote checkpoints.", [({}, last_checkpoint_age)])
    m.family("sequencer_stream_events_applied", "gauge",
             "events_applied of each stream's state (all events ever applied to it).",
             [({"stream": s["stream"]}, s["events_applied"]) for s in streams])
    m.family("sequencer_stream_age_days", "gauge",
             "Days between today and the stream's last processed date.",
             [({"stream": s["stream"]}, s["age_days"]) for s in streams if s["age_days"] is not None])
    return m.text()
