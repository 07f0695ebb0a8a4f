"""What monitoring shows, as pure functions: stream freshness (in calendar days and
in trading days), the lag document, the processing rate from samples, the
worker's readiness, and the Prometheus text of the worker's metrics.

Shared by the worker's HTTP views (`sequencer.adapters.http.views`), ``sequencer lag``
and the UI's data layer, so the three show the same numbers in the same shape.
No clock is read here: callers pass ``today`` and ``now``. No Kafka, no Faust.

The lag document (``GET /lag`` and ``sequencer lag --json``)::

    {"group": "sequencer-default", "topic": "sequencer.day-events",
     "total_lag": 12,
     "status": "OK" | "REWIND" | "WARN" | "STALL" | "STOP" | "ERR" | null,
     "status_window_s": 60.0,               # seconds of samples the status is judged over
     "members": 1 | null,                   # members of the group (null: unknown)
     "partitions": [{"topic": ..., "partition": 0, "committed": 40 | null,
                     "earliest": 0, "end": 52, "lag": 12, "note": "",
                     "status": "OK"}, ...],
     "processing_rate": 950.0 | null,       # events per second
     "rate_source": "worker" | "samples" | null,
     "catch_up_seconds": 0.013 | null,      # total_lag / rate; 0 when no lag
     "decision_latency": {"p50": 0.012, "p99": 0.045, "decisions": 10000} | null,
     "worker": {"phase": "folding", "reason": ..., "for_s": 12.5, ...} | null,   # its GET /status
     "streams": [ {"stream", "last_processed_date", "age_days",
                   "last_published_date", "last_decided_date", "days_behind"}, ... ],
     "streams_source": "worker" | "checkpoints" | null,
     "measured_at": "2025-09-20T10:00:00+00:00",
     "notes": ["..."]}
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Iterable, Iterator, Mapping, Sequence


from sequencer.domain import StreamState
from sequencer.app.lag_report import LagReport, TailDates
from sequencer.app.lag_status import Status, group_status
from sequencer.app.worker_status import PHASES


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


def freshness_rows(rows: Iterable[Mapping[str, Any]], tail: TailDates | None) -> list[dict[str, Any]]:
    """Stream rows (``stream``, ``last_processed_date``, ``age_days``) with their freshness
    in trading days, from the dates of the unconsumed tail of the event topic:

    - ``last_decided_date``: the state's last processed date;
    - ``last_published_date``: the stream's latest date in the tail; a stream
      with nothing in the tail has had all its records consumed, and its last
      decided date stands for it;
    - ``days_behind``: distinct dates of the stream in the tail after its last
      decided date (a tail date at or before it was folded but not committed yet).

    A stream in the tail without a state gets a row too. Without a tail (the
    topic could not be read) the three fields are null.
    """
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    tail_dates = tail.dates if tail is not None else {}
    for row in rows:
        stream = row["stream"]
        seen.add(stream)
        out.append(_with_freshness(dict(row), row.get("last_processed_date"), tail_dates.get(stream, set()),
                                   tail is not None))
    for stream in sorted(set(tail_dates) - seen):
        out.append(_with_freshness({"stream": stream, "last_processed_date": None, "age_days": None},
                                   None, tail_dates[stream], True))
    return out


def _with_freshness(row: dict[str, Any], decided: str | None, dates: set[str], known: bool) -> dict[str, Any]:
    decided = decided[:10] if decided else None
    if not known:
        return {**row, "last_published_date": None, "last_decided_date": decided, "days_behind": None}
    ahead = sorted(d for d in dates if decided is None or d > decided)
    published = max([*dates, *([decided] if decided else [])], default=None)
    return {**row, "last_published_date": published, "last_decided_date": decided, "days_behind": len(ahead)}


def lag_document(report: LagReport | None, *, topic: str, group: str,
                 rate: float | None, rate_source: str | None,
                 streams: Iterable[Mapping[str, Any]] = (), streams_source: str | None = None,
                 measured_at: str, error: str | None = None,
                 statuses: Mapping[int, Status] | None = None, status_window_s: float | None = None,
                 latency: Mapping[str, Any] | None = None, tail: TailDates | None = None,
                 worker: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document of ``GET /lag`` and ``sequencer lag --json`` (see the module docstring).

    ``statuses``: partition -> lag state (`sequencer.app.lag_status`); without
    them the statuses are null. ``tail``: the unconsumed records' dates, for
    the streams' freshness (`freshness_rows`); without it the streams are
    taken as they are (rows that already carry their freshness, or nulls).
    ``worker``: the worker's own ``GET /status`` document, when a worker answers."""
    notes: list[str] = []
    members = None
    if report is None:
        partitions: list[dict[str, Any]] = []
        total = None
        notes.append(f"offsets not available: {error}" if error else "offsets not available")
    else:
        doc = report.to_dict()
        partitions = doc["partitions"]
        total = doc["total_lag"]
        members = doc["members"]
        if not partitions:
            notes.append(f"topic {topic} has no partitions (does it exist?)")
        for row in partitions:
            if row["note"]:
                notes.append(f"{row['topic']}[{row['partition']}]: {row['note']}")
    for row in partitions:
        found = None if statuses is None else statuses.get(row["partition"])
        row["status"] = None if found is None else found.name
    status = None
    if statuses is not None and report is not None:
        status = group_status(statuses.get(row["partition"], Status.OK) for row in partitions).name
    if tail is not None and tail.truncated:
        notes.append(f"only the first {tail.records} unconsumed records were read for the streams' "
                     "freshness: days_behind is a lower bound")
    return {
        "group": group,
        "topic": topic,
        "total_lag": total,
        "status": status,
        "status_window_s": status_window_s,
        "members": members,
        "partitions": partitions,
        "processing_rate": rate,
        "rate_source": rate_source if rate is not None else None,
        "catch_up_seconds": catch_up_seconds(total, rate) if total is not None else None,
        "decision_latency": dict(latency) if latency is not None else None,
        "worker": dict(worker) if worker is not None else None,
        "streams": freshness_rows(streams, tail) if tail is not None else [
            {"last_published_date": None, "last_decided_date": None, "days_behind": None, **s}
            for s in streams],
        "streams_source": streams_source,
        "measured_at": measured_at,
        "notes": notes,
    }


def worker_status_lines(worker: Mapping[str, Any] | None) -> list[str]:
    """The worker's phase, and the incidents it repaired or could not, from its ``GET /status``
    (the ``worker`` member of the lag document): what ``sequencer lag`` and the UI print."""
    if not worker:
        return []
    phase = f"worker: {worker.get('phase')} for {worker.get('for_s')} s"
    if worker.get("reason"):
        phase += f" ({worker['reason']})"
    if worker.get("since_last_fold_s") is not None:
        phase += f"; last batch folded {worker['since_last_fold_s']} s ago"
    lines = [phase]
    counts = [(worker.get("seeks_back") or 0, "seeks back (delivery holes, stalls; repaired)"),
              (worker.get("partitions_read_again_for_checkpoints") or 0,
               "partitions read again for streams the table lost (run sequencer verify)"),
              (worker.get("records_deleted_before_folded") or 0,
               "records deleted by the broker before they were folded (retention: those days are missing; "
               "restore them from files)"),
              (worker.get("silences_past_session_timeout") or 0,
               "freezes past the session timeout (batches in flight wrote no state)"),
              (worker.get("checkpoint_write_failures") or 0, "checkpoint files not written"),
              (worker.get("checkpoints_refused_older") or 0, "checkpoints not replaced by an older state")]
    incidents = [f"{count} {what}" for count, what in counts if count]
    if incidents:
        lines.append("worker incidents since it started: " + "; ".join(incidents))
    return lines


def readiness(*, assigned: int, rebalancing: bool, recovering: bool) -> str | None:
    """None when the worker is ready to fold events, else why not (``GET /health/ready``)."""
    if rebalancing:
        return "the consumer group is rebalancing"
    if recovering:
        return "tables are being recovered from their changelogs"
    if assigned == 0:
        return "no partition of the event topic is assigned to this worker"
    return None


# --- Prometheus text exposition format (version 0.0.4) -------------------------

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Families:
    """The families of one /metrics read, collected as ``prometheus_client``
    collects its own metrics, so the library writes the text format.

    ``prometheus_client`` is imported here, not with the module: ``sequencer lag``
    and the UI use this module for the lag document only, and the import is
    about 55 ms of their start."""

    def __init__(self) -> None:
        self.families: list[Any] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[Mapping[str, Any], float | int]]) -> None:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        samples = list(samples)
        labels = list(dict.fromkeys(key for sample_labels, _ in samples for key in sample_labels))
        family_of = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
        metric = family_of(name, help_text, labels=labels)
        for sample_labels, value in samples:
            metric.add_metric([str(sample_labels.get(key, "")) for key in labels], float(value))
        self.families.append(metric)

    def collect(self) -> Iterator[Any]:
        return iter(self.families)

    def text(self) -> str:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return generate_latest(registry).decode()


def prometheus_text(*, lag: LagReport | None, counters: Mapping[str, Any], rate: float,
                    checkpoint_ages: Mapping[str, float], last_checkpoint_age: float | None,
                    streams: Sequence[Mapping[str, Any]],
                    statuses: Mapping[int, Status] | None = None,
                    freshness: Sequence[Mapping[str, Any]] = (), latency_text: str = "",
                    worker: Mapping[str, Any] | None = None) -> str:
    """The worker's metrics. ``counters`` is ``ProcessingCounters.as_dict()``;
    ``checkpoint_ages`` maps stream -> seconds since its checkpoint file was written;
    ``freshness``: rows of `freshness_rows`; ``latency_text``: the latency
    histogram's own exposition (`sequencer.app.latency`), appended as it is;
    ``worker``: its ``GET /status`` document, for its phase and the incidents it
    repaired by itself (the same document the lag document carries)."""
    m = _Families()
    if lag is not None and statuses is not None:
        m.family("sequencer_consumer_lag_status", "gauge",
                 "Lag state per partition over the status window: 0 OK, 1 REWIND, 2 WARN, 3 STALL, "
                 "4 STOP, 5 ERR.",
                 [({"topic": p.topic, "partition": p.partition}, int(statuses.get(p.partition, Status.OK)))
                  for p in lag.partitions])
        m.family("sequencer_consumer_group_status", "gauge",
                 "Lag state of the group: its worst partition's (0 OK ... 5 ERR).",
                 [({}, int(group_status(statuses.get(p.partition, Status.OK) for p in lag.partitions)))])
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
    worker = worker or {}
    m.family("sequencer_seeks_back_total", "counter",
             "Times the worker sought back in the event topic to records fetched but never handed "
             "over (delivery holes, stalled partitions), since it started.",
             [({}, worker.get("seeks_back", 0))])
    m.family("sequencer_partitions_read_again_for_checkpoints_total", "counter",
             "Partitions read again from a checkpoint's offset because the restored table had lost "
             "a stream's value, since the worker started (an incident: run sequencer verify).",
             [({}, worker.get("partitions_read_again_for_checkpoints", 0))])
    m.family("sequencer_records_deleted_before_folded_total", "counter",
             "Records of the event topic the broker deleted (retention, DeleteRecords) before the worker "
             "folded them, since it started: the streams of their partitions miss those days.",
             [({}, worker.get("records_deleted_before_folded", 0))])
    if worker.get("phase") is not None:
        m.family("sequencer_worker_phase", "gauge",
                 "1 for the phase the worker is in (starting, waiting, rebalancing, recovering, idle, "
                 "folding, retrying), 0 for the others.",
                 [({"phase": name}, int(name == worker["phase"])) for name in PHASES])
    if worker.get("for_s") is not None:
        m.family("sequencer_worker_phase_seconds", "gauge",
                 "Seconds the worker has been in its phase (alert on retrying or waiting that lasts).",
                 [({}, worker["for_s"])])
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
    m.family("sequencer_stream_days_behind", "gauge",
             "Distinct trading dates of the stream on the event topic after its last decided date.",
             [({"stream": s["stream"]}, s["days_behind"]) for s in freshness if s.get("days_behind") is not None])
    m.family("sequencer_stream_last_published_timestamp", "gauge",
             "The stream's latest date on the event topic, as Unix seconds at 00:00 UTC.",
             [({"stream": s["stream"]}, _date_seconds(s["last_published_date"]))
              for s in freshness if s.get("last_published_date")])
    m.family("sequencer_stream_last_decided_timestamp", "gauge",
             "The stream's last decided (processed) date, as Unix seconds at 00:00 UTC.",
             [({"stream": s["stream"]}, _date_seconds(s["last_decided_date"]))
              for s in freshness if s.get("last_decided_date")])
    return m.text() + latency_text


def _date_seconds(date: str) -> int:
    day = dt.date.fromisoformat(date[:10])
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())
