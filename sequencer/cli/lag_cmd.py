"""``sequencer lag``: how far the worker group is behind the event topic, and how fresh each stream is.

Works with or without a running worker: offsets come from the broker (before
the group's first commit the lag is end - earliest). The processing rate comes
from successive samples with ``--watch``, else from the worker's ``GET /lag``
when it answers; the streams' last processed dates from the worker when it
answers, else from the checkpoint files.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import time
from typing import Any

from .common import add_config_arguments, config_name_of

#: Seconds a lag reading may take (an unreachable broker must not hang the command).
READ_TIMEOUT_S = 15.0


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
    parser.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    from ..settings import Settings

    return Settings.from_env(bootstrap_servers=args.bootstrap, config_name=config_name_of(args),
                             config_file=args.config, state_dir=args.state_dir, topic_events=args.topic)


def checkpoint_streams(args: argparse.Namespace, settings, today: dt.date) -> list[dict[str, Any]]:
    """Freshness rows from the checkpoint files (when no worker answers)."""
    from ..checkpoints import CheckpointStore, checkpoint_folder
    from ..config_file import load_config
    from ..monitoring import stream_row

    store = CheckpointStore(checkpoint_folder(settings.state_dir, settings.config_name),
                            load_config(settings.config_file))
    loaded, _ = store.load_all()
    return [stream_row(cp.state, today, cp.saved_at) for _, cp in sorted(loaded.items())]


def sample(args: argparse.Namespace, settings, group: str, history: list[tuple[float, int]]) -> dict[str, Any]:
    """One lag document; appends (time, committed total) to ``history`` for the rate."""
    from ..api_client import ApiError, ApiUnavailable, WorkerApi
    from ..lag import consumer_lag
    from ..monitoring import committed_total, lag_document, rate_from_samples

    report, error = None, None
    try:
        report = asyncio.run(asyncio.wait_for(
            consumer_lag(settings.bootstrap_servers, group, settings.topic_events,
                         settings.aiokafka_security_kwargs()), READ_TIMEOUT_S))
    except Exception as exc:  # noqa: BLE001 - reported, the rest of the document still helps
        error = f"broker {settings.bootstrap_servers}: {type(exc).__name__}: {exc}"
    if report is not None:
        history.append((time.monotonic(), committed_total(report)))
        del history[:-12]  # the rate is taken over the last minute or so of samples

    api = WorkerApi(args.api or f"http://{settings.web_host}:{settings.web_port}", timeout=2.0)
    worker_doc = None
    try:
        worker_doc = api.lag()
        if worker_doc.get("group") != group:
            worker_doc = None  # a worker of another configuration
    except (ApiUnavailable, ApiError, ValueError):
        worker_doc = None

    rate, rate_source = rate_from_samples(history), "samples"
    if rate is None and worker_doc is not None:
        rate, rate_source = worker_doc.get("processing_rate"), "worker"
    today = dt.date.today()
    if worker_doc is not None:
        streams, streams_source = worker_doc.get("streams", []), "worker"
    else:
        streams = [{k: row[k] for k in ("stream", "last_processed_date", "age_days")}
                   for row in checkpoint_streams(args, settings, today)]
        streams_source = "checkpoints"
    doc = lag_document(report, topic=settings.topic_events, group=group, rate=rate, rate_source=rate_source,
                       streams=streams, streams_source=streams_source,
                       measured_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                       error=error)
    if worker_doc is None:
        doc["notes"].append("no worker API answered: stream dates are from the checkpoint files")
    return doc


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no processing rate yet)"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def render(doc: dict[str, Any]) -> str:
    lines = [f"group {doc['group']}  topic {doc['topic']}  at {doc['measured_at']}"]
    if doc["partitions"]:
        lines.append(f"  {'partition':>9} {'committed':>10} {'end':>10} {'lag':>8}")
        for p in doc["partitions"]:
            committed = "-" if p["committed"] is None else str(p["committed"])
            lines.append(f"  {p['partition']:>9} {committed:>10} {p['end']:>10} {p['lag']:>8}")
    total = doc["total_lag"]
    lines.append(f"total lag: {'unknown' if total is None else total}")
    rate = doc["processing_rate"]
    lines.append("processing rate: " + ("unknown" if rate is None else f"{rate:,.1f} events/s ({doc['rate_source']})"))
    if total is not None:
        lines.append(f"time to catch up: {_duration(doc['catch_up_seconds'])}")
    if doc["streams"]:
        lines.append(f"streams ({doc['streams_source']}):")
        lines.append(f"  {'stream':8} {'last date':10} {'age d':>6}")
        for s in doc["streams"]:
            age = "-" if s.get("age_days") is None else str(s["age_days"])
            lines.append(f"  {s['stream']:8} {s.get('last_processed_date') or '-':10} {age:>6}")
    else:
        lines.append(f"streams ({doc['streams_source']}): none")
    for note in doc["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    group = args.group or settings.app_id
    history: list[tuple[float, int]] = []
    while True:
        doc = sample(args, settings, group, history)
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
