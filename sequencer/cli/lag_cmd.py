"""``sequencer lag``: how far the worker group is behind the event topic, its lag
state, the decision latency, and how fresh each stream is in trading days.

Works with or without a running worker: offsets come from the broker (before
the group's first commit the lag is end - earliest; the end is the larger of
ListOffsets and the fetch high watermark). The lag states come from the
worker's ``GET /lag`` when it answers (it samples its group every few
seconds), else from samples this command takes itself: over ``--window S``
seconds, or one per ``--watch`` round. The processing rate comes from
successive samples, else from the worker; the decision latency only from the
worker (it is measured where decisions are sent). The streams' last
processed dates come from the worker when it answers, else from the
checkpoint files; their freshness in trading days from the unconsumed tail of
the event topic, read here.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from typing import Any

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.app.clock import utc_now_iso, utc_today
from .common import add_config_arguments, settings_of

#: Seconds a lag reading may take (an unreachable broker must not hang the command).
READ_TIMEOUT_S = 15.0
#: The status window of ``--watch`` without ``--window``: the worker's own (Burrow's ten commits or so).
DEFAULT_WATCH_WINDOW_S = 60.0
#: Samples taken over ``--window`` (one more at its end).
WINDOW_SAMPLES = 6


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lag", help="consumer lag per partition, processing rate, stream freshness",
        description="Committed offset, log end offset and lag per partition of the event topic for "
                    "the worker group; the processing rate and time to catch up; each stream's last "
                    "processed date and its age.")
    parser.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers (default $KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--group", default=None, help="consumer group (default: the worker's, sequencer-<config name>)")
    parser.add_argument("--topic", default=None, help="event topic (default $SEQUENCER_TOPIC_EVENTS)")
    add_config_arguments(parser)
    parser.add_argument("--api", default=None, metavar="URL",
                        help="worker HTTP API (default http://$SEQUENCER_WEB_HOST:$SEQUENCER_WEB_PORT)")
    parser.add_argument("--json", action="store_true", help="one JSON document (a JSON line per sample with --watch)")
    parser.add_argument("--watch", nargs="?", type=float, const=5.0, default=None, metavar="SECONDS",
                        help="sample again every SECONDS (default 5) until interrupted")
    parser.add_argument("--window", type=float, default=None, metavar="SECONDS",
                        help="without a worker API: sample the group over SECONDS to judge its lag state "
                             "(WARN, STALL, STOP need samples over a whole window; default: one sample, "
                             f"or {DEFAULT_WATCH_WINDOW_S:.0f} s of --watch samples)")
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    return settings_of(args, bootstrap_servers=args.bootstrap, topic_events=args.topic)


def checkpoint_streams(args: argparse.Namespace, settings, today: dt.date) -> list[dict[str, Any]]:
    """Freshness rows from the checkpoint files (when no worker answers)."""
    from sequencer.adapters.files.checkpoints import CheckpointStore, checkpoint_folder
    from sequencer.adapters.files.config_file import load_config
    from sequencer.app.monitoring import stream_row

    store = CheckpointStore(checkpoint_folder(settings.state_dir, settings.config_name),
                            load_config(settings.config_file))
    loaded, _ = store.load_all()
    return [stream_row(cp.state, today, cp.saved_at) for _, cp in sorted(loaded.items())]


class Sampler:
    """Successive readings of the group: the rate's history and the lag-state window."""

    def __init__(self, window_s: float) -> None:
        from sequencer.app.lag_status import LagWindow

        self.rate_history: list[tuple[float, int]] = []
        self.window = LagWindow(window_s)

    def read(self, settings, group: str):
        """One reading of the group (with its tail), recorded; (reading, error)."""
        from sequencer.adapters.kafka.lag import DEFAULT_TAIL_LIMIT, read_group
        from sequencer.app.monitoring import committed_total

        try:
            reading = asyncio.run(asyncio.wait_for(
                read_group(settings.bootstrap_servers, group, settings.topic_events,
                           KafkaConnection.of(settings).aiokafka_kwargs(), tail_limit=DEFAULT_TAIL_LIMIT),
                READ_TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001 - reported, the rest of the document still helps
            return None, f"broker {settings.bootstrap_servers}: {type(exc).__name__}: {exc}"
        now = time.monotonic()
        report = reading.report
        self.rate_history.append((now, committed_total(report)))
        del self.rate_history[:-12]  # the rate is taken over the last minute or so of samples
        self.window.add(now, {p.partition: (p.committed, p.lag) for p in report.partitions}, report.members)
        return reading, None


def worker_lag(args: argparse.Namespace, settings, group: str) -> dict[str, Any] | None:
    """The worker's ``GET /lag`` when a worker of this group answers, else None."""
    from sequencer.adapters.http.api_client import ApiError, ApiUnavailable, WorkerApi

    api = WorkerApi(args.api or f"http://{settings.web_host}:{settings.web_port}", timeout=2.0)
    try:
        doc = api.lag()
    except (ApiUnavailable, ApiError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("group") == group else None  # else another configuration's


def sample(args: argparse.Namespace, settings, group: str, sampler: Sampler,
           worker_doc: dict[str, Any] | None, one_sample: bool = False) -> dict[str, Any]:
    """One lag document from the last reading of ``sampler`` (taken here) and the worker's answer."""
    from sequencer.app.lag_status import Status
    from sequencer.app.monitoring import lag_document, rate_from_samples

    reading, error = sampler.read(settings, group)
    report = None if reading is None else reading.report
    rate, rate_source = rate_from_samples(sampler.rate_history), "samples"
    if rate is None and worker_doc is not None:
        rate, rate_source = worker_doc.get("processing_rate"), "worker"
    today = utc_today()
    if worker_doc is not None:
        streams = [{k: row.get(k) for k in ("stream", "last_processed_date", "age_days")}
                   for row in worker_doc.get("streams", [])]
        streams_source = "worker"
    else:
        streams = [{k: row[k] for k in ("stream", "last_processed_date", "age_days")}
                   for row in checkpoint_streams(args, settings, today)]
        streams_source = "checkpoints"
    statuses = sampler.window.statuses(time.monotonic())
    window_s = sampler.window.window_s
    worker_statuses = {p["partition"]: Status[p["status"]] for p in (worker_doc or {}).get("partitions", [])
                       if p.get("status") in Status.__members__}
    if worker_statuses and args.window is None:
        statuses, window_s = worker_statuses, worker_doc.get("status_window_s")
    doc = lag_document(report, topic=settings.topic_events, group=group, rate=rate, rate_source=rate_source,
                       streams=streams, streams_source=streams_source,
                       measured_at=utc_now_iso(),
                       error=error, statuses=statuses, status_window_s=window_s,
                       latency=None if worker_doc is None else worker_doc.get("decision_latency"),
                       tail=None if reading is None else reading.tail,
                       worker=None if worker_doc is None else worker_doc.get("worker"))
    if worker_doc is None:
        doc["notes"].append("no worker API answered: stream dates are from the checkpoint files, "
                            "and the decision latency is unknown (the worker measures it)")
        if one_sample and doc["total_lag"]:
            doc["notes"].append("lag state from one sample: pass --window SECONDS to judge WARN, STALL "
                                "and STOP over a window of samples")
    return doc


def window_sample(args: argparse.Namespace, settings, group: str, sampler: Sampler) -> dict[str, Any]:
    """Samples over ``--window`` seconds (from the first reading on); the document of the last one."""
    every = args.window / WINDOW_SAMPLES
    sampler.read(settings, group)
    deadline = time.monotonic() + args.window
    while time.monotonic() < deadline:
        if not args.json:
            print(f"sampling the group for its lag state: {deadline - time.monotonic():.0f} s left",
                  file=sys.stderr, flush=True)
        time.sleep(min(every, max(deadline - time.monotonic(), 0.0)))
        if time.monotonic() < deadline:
            sampler.read(settings, group)
    return sample(args, settings, group, sampler, None)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no processing rate yet)"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _millis(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"


def render(doc: dict[str, Any]) -> str:
    from sequencer.app.monitoring import worker_status_lines

    lines = [f"group {doc['group']}  topic {doc['topic']}  at {doc['measured_at']}"]
    if doc["partitions"]:
        lines.append(f"  {'partition':>9} {'committed':>10} {'end':>10} {'lag':>8}  status")
        for p in doc["partitions"]:
            committed = "-" if p["committed"] is None else str(p["committed"])
            lines.append(f"  {p['partition']:>9} {committed:>10} {p['end']:>10} {p['lag']:>8}  "
                         f"{p.get('status') or '-'}")
    total = doc["total_lag"]
    lines.append(f"total lag: {'unknown' if total is None else total}")
    if doc.get("status"):
        window = doc.get("status_window_s")
        over = f" over {window:.0f} s of samples" if window else ""
        members = "" if doc.get("members") is None else f", {doc['members']} member(s) in the group"
        lines.append(f"status: {doc['status']}{over}{members}")
    rate = doc["processing_rate"]
    lines.append("processing rate: " + ("unknown" if rate is None else f"{rate:,.1f} events/s ({doc['rate_source']})"))
    if total is not None:
        lines.append(f"time to catch up: {_duration(doc['catch_up_seconds'])}")
    latency = doc.get("decision_latency")
    if latency and latency.get("decisions"):
        lines.append(f"decision latency: p50 {_millis(latency['p50'])}, p99 {_millis(latency['p99'])} "
                     f"(last {latency['decisions']:,} decisions)")
    else:
        lines.append("decision latency: unknown" + (" (no decision yet)" if latency else ""))
    lines += worker_status_lines(doc.get("worker"))
    if doc["streams"]:
        lines.append(f"streams ({doc['streams_source']}):")
        lines.append(f"  {'stream':8} {'last date':10} {'age d':>6} {'published':10} {'days behind':>11}")
        for s in doc["streams"]:
            age = "-" if s.get("age_days") is None else str(s["age_days"])
            behind = "-" if s.get("days_behind") is None else str(s["days_behind"])
            lines.append(f"  {s['stream']:8} {s.get('last_processed_date') or '-':10} {age:>6} "
                         f"{s.get('last_published_date') or '-':10} {behind:>11}")
    else:
        lines.append(f"streams ({doc['streams_source']}): none")
    for note in doc["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    group = args.group or settings.app_id
    if args.window is not None and not args.window > 0:
        raise SystemExit("sequencer lag: --window must be a positive number of seconds")
    window_s = args.window or (DEFAULT_WATCH_WINDOW_S if args.watch is not None else 1.0)
    sampler = Sampler(window_s)
    while True:
        worker_doc = worker_lag(args, settings, group)
        if args.watch is None and args.window is not None and worker_doc is None:
            doc = window_sample(args, settings, group, sampler)
        else:
            doc = sample(args, settings, group, sampler, worker_doc,
                         one_sample=args.watch is None and args.window is None)
        if args.json:
            print(json.dumps(doc) if args.watch is not None else json.dumps(doc, indent=2), flush=True)
        else:
            print(render(doc), flush=True)
        if args.watch is None:
            return 0 if doc["total_lag"] is not None else 2
        try:
            time.sleep(max(args.watch, 0.2))
        except KeyboardInterrupt:
            return 0
        if not args.json:
            print()
