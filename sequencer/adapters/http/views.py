"""The worker's HTTP API, served by Faust's web server (aiohttp).

``register_views(app, runtime)`` adds, next to Faust's own pages:

=========================================  ====================================================
``GET  /lag``                              lag document (`sequencer.app.monitoring`), as ``sequencer lag --json``
``GET  /health/live``                      200 while the process answers
``GET  /health/ready``                     200 when partitions are assigned, tables recovered and the
                                           group is not rebalancing; 503 ``{"ready": false, "reason"}`` otherwise
``GET  /streams``                          one row per stream (`sequencer.app.monitoring.stream_row`)
``GET  /streams/{stream}``                 the stream's state, SPEC 4 JSON; 404 if unknown
``GET  /metrics``                          Prometheus text format
``GET  /status``                           phase (folding, idle, waiting, recovering, retrying) and why
``POST /streams/{stream}/checkpoint``      write the stream's checkpoint file now
``POST /streams/{stream}/reset``           forget the stream: table tombstones, cache, checkpoint
=========================================  ====================================================

GET needs nothing. POST needs ``Authorization: Bearer <SEQUENCER_API_TOKEN>``
and is refused with 403 (JSON ``{"error": ...}``) when no token is configured
or the header does not match. The server binds to ``settings.web_host``
(127.0.0.1 by default).

A worker answers only for the streams of the partitions assigned to it now
(several workers: ask each, or read the checkpoints); a stream of another
worker's partition is 404. ``POST .../checkpoint`` answers 409 when the file
on disk is newer and 503 naming the file and the OS error when it cannot be
written (read-only folder, disk full); it writes through the worker's
checkpoint rounds (`checkpoint_now`), never beside one.

Limits: a reset that lands while a batch
of the same stream is between fold and table write is overwritten by that
batch; reset a stream whose events are not flowing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from sequencer.domain import StreamState, state_to_dict
from sequencer.domain.events import STREAM_NAME
from sequencer.adapters.files.checkpoints import (CheckpointError, OlderCheckpoint, OtherPartitionCheckpoint,
                                                  stream_of_file)
from sequencer.app.clock import utc_now_iso, utc_today
from sequencer.adapters.kafka.group_monitor import SAMPLE_EVERY_S, GroupMonitor
from sequencer.app.lag_report import GroupReading, TailDates
from sequencer.adapters.faust.live_state import changelog_partition
from sequencer.app.worker_view import WorkerView
from sequencer.app.monitoring import (
    PROMETHEUS_CONTENT_TYPE,
    freshness_rows,
    lag_document,
    prometheus_text,
    readiness,
    stream_row,
)

if TYPE_CHECKING:
    import faust

logger = logging.getLogger(__name__)

#: Seconds a reset waits for its changelog tombstones to be acknowledged.
TOMBSTONE_TIMEOUT_S = 15.0


def checkpoint_files(folder: Path) -> dict[str, Path]:
    """stream -> checkpoint path in ``folder`` (``state_{instrument}_{stream}.json``)."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in folder.glob("state_*_*.json"):
        stream = stream_of_file(path)
        if stream is not None:
            found[stream] = path
    return found


async def checkpoint_now(runtime: WorkerView, stream: str) -> tuple[int, dict[str, Any]]:
    """``POST /streams/{stream}/checkpoint`` after its token check: (HTTP status, JSON body).

    The file is written by the runtime's checkpoint writer, one round of one
    stream under the periodic rounds' lock: a round in flight finishes first,
    so its older snapshot never lands after the newer state written here, and
    the next round waits for this one. 404 for a stream this worker does not
    own (or no longer owns when its turn comes), 409 when the file holds a
    newer state, 503 naming the file and the OS error when it cannot be written.
    """
    unknown = (404, {"error": f"unknown stream {stream!r}", "stream": stream})
    if not STREAM_NAME.fullmatch(stream):
        return unknown
    try:
        saved = await runtime.checkpoints.save_now(stream)
    except (OlderCheckpoint, OtherPartitionCheckpoint) as refusal:
        return 409, {"error": str(refusal), "stream": stream}
    except (OSError, CheckpointError) as failure:
        # A read-only or full folder, a folder in the file's place: say
        # which file and why, not a bare 500.
        reason = (failure.problem if isinstance(failure, CheckpointError)
                  else failure.strerror or type(failure).__name__)
        state = runtime.state(stream)
        where = (runtime.store.path_for(stream, state.instrument) if state is not None
                 else runtime.store.folder)
        logger.error("checkpoint of %s not written over HTTP: %s: %s", stream, where, reason)
        return 503, {"error": f"checkpoint of {stream} not written: {where}: {reason}",
                     "stream": stream, "folder": str(runtime.store.folder)}
    if saved is None:
        return unknown
    state, path = saved
    return 200, {"stream": stream, "path": str(path), "saved_at": _saved_at_of(path),
                 "last_processed_date": state.last_processed_date, "events_applied": state.events_applied}


def status_document(runtime: WorkerView) -> dict[str, Any]:
    """``GET /status``, also the ``worker`` member of ``GET /lag`` (so ``sequencer lag``
    and the UI show the worker's phase and its repairs from the one read they make)."""
    schedule = runtime.schedule
    offsets = runtime.input_offsets
    return {**runtime.status.as_dict(),
            "owned_partitions": sorted(runtime.owned),
            "checkpoint_write_failures": schedule.failures,
            "checkpoints_refused_older": schedule.refused_older,
            # Both count incidents the worker repaired by itself (README,
            # "The worker commits its input offsets itself").
            "seeks_back": 0 if offsets is None else offsets.rewinds,
            "partitions_read_again_for_checkpoints": 0 if offsets is None else offsets.checkpoint_tails_read,
            # Not repaired: days the broker deleted before they were folded (retention).
            "records_deleted_before_folded": 0 if offsets is None else offsets.records_deleted_unfolded,
            # Freezes past the session timeout: batches in flight then write no state.
            "silences_past_session_timeout": 0 if runtime.membership is None else runtime.membership.silences}


def _saved_at_of(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8-sig")).get("saved_at")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


class _Api:
    """The views' shared access to the runtime and the group monitor."""

    def __init__(self, app: "faust.App", runtime: WorkerView) -> None:
        self.app = app
        self.runtime = runtime
        self.group = GroupMonitor(runtime.settings, lambda: runtime.batches)

    def assigned_partitions(self) -> set[int]:
        topic = self.runtime.settings.topic_events
        try:
            return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}
        except Exception:  # noqa: BLE001 - the consumer is not started (yet): nothing assigned
            return set()

    def not_ready(self) -> str | None:
        try:
            recovering = bool(self.app.in_recovery) or not self.app.tables.recovery.completed.is_set()
            rebalancing = bool(self.app.rebalancing)
        except Exception as exc:  # noqa: BLE001 - parts of the app are not built yet
            return f"the worker is starting ({type(exc).__name__}: {exc})"
        return readiness(assigned=len(self.assigned_partitions()), rebalancing=rebalancing, recovering=recovering)

    async def lag_stream_rows(self) -> list[dict[str, Any]]:
        """This worker's streams: name, last processed date, age (the lag document's start)."""
        return [{k: row[k] for k in ("stream", "last_processed_date", "age_days")}
                for row in await self.stream_rows()]

    def own_tail(self, reading: GroupReading | None) -> TailDates | None:
        """The unconsumed dates of the partitions this worker holds (the others' streams are theirs)."""
        if reading is None or reading.tail is None:
            return None
        return reading.tail.only(self.assigned_partitions())

    async def checkpoint_info(self) -> dict[str, tuple[str | None, float]]:
        """stream -> (saved_at, file mtime) of this configuration's checkpoint files."""
        folder = self.runtime.store.folder

        def read() -> dict[str, tuple[str | None, float]]:
            info = {}
            for stream, path in checkpoint_files(folder).items():
                try:
                    mtime = path.stat().st_mtime
                except OSError:
                    continue
                info[stream] = (_saved_at_of(path), mtime)
            return info

        return await asyncio.get_running_loop().run_in_executor(None, read)

    async def stream_rows(self) -> list[dict[str, Any]]:
        info = await self.checkpoint_info()
        today = utc_today()
        states = self.runtime.states()
        return [stream_row(states[s], today, info.get(s, (None, 0.0))[0]) for s in sorted(states)]

    def state(self, stream: str) -> StreamState | None:
        """The stream's state if this worker owns its partition now."""
        if not STREAM_NAME.fullmatch(stream):
            return None
        return self.runtime.state(stream)

    def authorized(self, request: Request) -> str | None:
        """None when the request may POST, else why not."""
        token = self.runtime.settings.api_token
        if not token:
            return "POST is disabled: no API token is configured (set SEQUENCER_API_TOKEN)"
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return "missing 'Authorization: Bearer <token>' header"
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return "invalid API token"
        return None

    async def reset(self, stream: str, state: StreamState | None) -> dict[str, Any]:
        runtime = self.runtime
        settings = runtime.settings
        key = stream.encode()
        partition = changelog_partition(state, stream, settings.topic_events, settings.partitions)
        pending = []
        cleared_tables = []
        for table in (runtime.states_table, runtime.last_events_table):
            if table is None:
                continue
            # A tombstone, so that a restore (on this or another worker) forgets it too.
            pending.append(table.send_changelog(partition, key, None))
            table.data.pop(key, None)
            cleared_tables.append(table.name)
        runtime.live.forget(stream)
        removed = await asyncio.get_running_loop().run_in_executor(None, runtime.store.clear, stream)
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending), TOMBSTONE_TIMEOUT_S)
        logger.warning("stream %s reset over HTTP: tables %s partition %d, checkpoints removed: %s",
                       stream, cleared_tables, partition, [str(p) for p in removed])
        return {"stream": stream, "reset": True, "partition": partition, "tables": cleared_tables,
                "removed_checkpoints": [str(p) for p in removed]}


def register_views(app: "faust.App", runtime: WorkerView) -> None:
    """Add the Sequencer API to the app's web server (see the module docstring)."""
    api = _Api(app, runtime)

    def error(view: View, status: int, message: str, **extra: Any) -> Response:
        return view.json({"error": message, **extra}, status=status)

    @app.timer(interval=SAMPLE_EVERY_S, on_leader=False)
    async def sample_group_lag() -> None:
        await api.group.read()

    @app.page("/lag", name="sequencer-lag")
    class LagView(View):
        async def get(self, request: Request) -> Response:
            reading, problem = await api.group.read(with_tail=True)
            settings = runtime.settings
            return self.json(lag_document(
                None if reading is None else reading.report, topic=settings.topic_events,
                group=settings.app_id, rate=runtime.processing_rate(), rate_source="worker",
                streams=await api.lag_stream_rows(), streams_source="worker",
                measured_at=utc_now_iso(), error=problem, statuses=api.group.statuses(),
                status_window_s=api.group.window.window_s, latency=runtime.latency.summary(),
                tail=api.own_tail(reading), worker=status_document(runtime)))

    @app.page("/health/live", name="sequencer-health-live")
    class LiveView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"live": True})

    @app.page("/health/ready", name="sequencer-health-ready")
    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            reason = api.not_ready()
            if reason is not None:
                return self.json({"ready": False, "reason": reason}, status=503)
            return self.json({"ready": True, "partitions": sorted(api.assigned_partitions())})

    @app.page("/streams", name="sequencer-streams")
    class StreamsView(View):
        async def get(self, request: Request) -> Response:
            return self.json(await api.stream_rows())

    @app.page("/streams/{stream}", name="sequencer-stream")
    class StreamView(View):
        async def get(self, request: Request, stream: str) -> Response:
            state = api.state(stream)
            if state is None:
                return error(self, 404, f"unknown stream {stream!r}", stream=stream)
            return self.json(state_to_dict(state))

    @app.page("/metrics", name="sequencer-metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            reading, _ = await api.group.read(with_tail=True)
            info = await api.checkpoint_info()
            now = time.time()
            last = runtime.schedule.last_written_at
            text = prometheus_text(
                lag=None if reading is None else reading.report, counters=runtime.processor.counters.as_dict(),
                rate=runtime.processing_rate(),
                checkpoint_ages={s: max(now - mtime, 0.0) for s, (_, mtime) in info.items()},
                last_checkpoint_age=None if last is None else max(now - last, 0.0),
                streams=await api.stream_rows(), statuses=api.group.statuses(),
                freshness=freshness_rows(await api.lag_stream_rows(), api.own_tail(reading)),
                latency_text=runtime.latency.exposition(), worker=status_document(runtime))
            return self.bytes(text.encode(), headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})

    @app.page("/status", name="sequencer-status")
    class StatusView(View):
        async def get(self, request: Request) -> Response:
            return self.json(status_document(runtime))

    @app.page("/streams/{stream}/checkpoint", name="sequencer-stream-checkpoint")
    class CheckpointView(View):
        async def post(self, request: Request, stream: str) -> Response:
            refused = api.authorized(request)
            if refused:
                return error(self, 403, refused)
            status, body = await checkpoint_now(runtime, stream)
            return self.json(body, status=status)

    @app.page("/streams/{stream}/reset", name="sequencer-stream-reset")
    class ResetView(View):
        async def post(self, request: Request, stream: str) -> Response:
            refused = api.authorized(request)
            if refused:
                return error(self, 403, refused)
            if not STREAM_NAME.fullmatch(stream):
                return error(self, 404, f"unknown stream {stream!r}", stream=stream)
            state = api.state(stream)
            has_files = stream in checkpoint_files(runtime.store.folder)
            if state is None and not has_files:
                return error(self, 404, f"unknown stream {stream!r}", stream=stream)
            return self.json(await api.reset(stream, state))
