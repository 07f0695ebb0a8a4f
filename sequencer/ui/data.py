"""What the dashboard shows and does, without Streamlit (so tests drive it directly).

Two sources, chosen on every refresh:

- a running worker (its HTTP API answers at ``--api``): live states, lag and
  rate from ``GET /lag``; "Save state" posts ``/streams/{s}/checkpoint``,
  "Clear state" posts ``/streams/{s}/reset`` (with ``SEQUENCER_API_TOKEN``);
- no worker: the checkpoint files of the configuration; "Save state" rewrites
  the loaded states into their files (an older-layout file is then written in
  the current layout), "Clear state" deletes the stream's files. The lag is
  read from the broker only when ``--bootstrap`` is given.

"Load previous state" shows the checkpoint files (the state saved last)
instead of the worker's live states; without a worker, nothing is shown until
it is ticked, as the desk's earlier tool started empty unless told to load.

Targets over time: a state holds the last ``depth`` peaks, not their dates, so
the history of targets comes from a decisions file (``--decisions``, the
``decisions.csv`` that ``sequencer run`` and ``sequencer replay`` write);
without one only the current window is drawn.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.adapters.http.api_client import ApiError, ApiUnavailable, WorkerApi
from sequencer.adapters.files.checkpoints import (
    CheckpointError,
    CheckpointStore,
    OlderCheckpoint,
    checkpoint_folder,
)
from sequencer.app.clock import utc_now_iso, utc_today
from sequencer.adapters.files.config_file import load_config
from ..domain import SequencerConfig, StreamState, state_to_dict
from sequencer.domain.fold import ladder_rung, target_cap, window_median as median_of_full_window
from sequencer.app.monitoring import stream_row


@dataclass(frozen=True)
class UiOptions:
    api: str | None = None
    state_dir: Path | None = None
    config: Path | None = None
    config_name: str | None = None
    decisions: Path | None = None
    bootstrap: str | None = None


def parse_options(argv: list[str]) -> UiOptions:
    """The arguments ``sequencer ui`` passes after ``--`` (unknown ones are ignored)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--api")
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--config-name")
    parser.add_argument("--decisions", type=Path)
    parser.add_argument("--bootstrap")
    known, _ = parser.parse_known_args(argv)
    return UiOptions(**vars(known))


@dataclass
class View:
    """One refresh's worth of data."""

    mode: str                      # "worker" or "checkpoints"
    source: str                    # where the states came from, for the page
    states: dict[str, dict[str, Any]] = field(default_factory=dict)   # SPEC 4 documents
    rows: list[dict[str, Any]] = field(default_factory=list)          # one per stream
    lag: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)
    loaded: dict[str, StreamState] = field(default_factory=dict)      # states read from files


class Dashboard:
    def __init__(self, options: UiOptions, environ: dict[str, str] | None = None,
                 today: dt.date | None = None) -> None:
        from ..settings import Settings

        from ..settings.location import named_config

        name = named_config(options.config_name, options.config)
        self.settings = Settings.from_env(environ, config_name=name, config_file=options.config,
                                          state_dir=options.state_dir, bootstrap_servers=options.bootstrap)
        self.options = options
        self.config: SequencerConfig = load_config(self.settings.config_file)
        self.store = CheckpointStore(checkpoint_folder(self.settings.state_dir, self.settings.config_name),
                                     self.config)
        url = options.api or f"http://{self.settings.web_host}:{self.settings.web_port}"
        self.api = WorkerApi(url, token=self.settings.api_token, timeout=1.5)
        self.today = today

    # --- reading ----------------------------------------------------------------------

    def worker_running(self) -> bool:
        return self.api.reachable()

    def load(self, load_previous: bool) -> View:
        today = self.today or utc_today()
        worker = self.worker_running()
        mode = "worker" if worker else "checkpoints"
        if load_previous or not worker:
            view = View(mode, f"checkpoint files in {self.store.folder}")
            if load_previous:
                loaded, refused = self.store.load_all()
                view.problems += [str(error) for error in refused]
                for stream, cp in sorted(loaded.items()):
                    view.loaded[stream] = cp.state
                    view.states[stream] = state_to_dict(cp.state, saved_at=cp.saved_at)
                    view.rows.append(stream_row(cp.state, today, cp.saved_at))
        else:
            view = View(mode, f"worker at {self.api.base_url}")
            try:
                view.rows = self.api.streams()
                for row in view.rows:
                    view.states[row["stream"]] = self.api.stream(row["stream"])
            except (ApiUnavailable, ApiError) as error:
                view.problems.append(str(error))
        view.lag = self.lag(worker)
        freshness = freshness_by_stream(view.lag)
        for row in view.rows:
            row["partition_lag"] = partition_lag(view.states.get(row["stream"]), view.lag)
            found = freshness.get(row["stream"], {})
            row["last_published_date"] = found.get("last_published_date")
            row["days_behind"] = found.get("days_behind")
        return view

    def lag(self, worker: bool) -> dict[str, Any] | None:
        if worker:
            try:
                return self.api.lag()
            except (ApiUnavailable, ApiError):
                return None
        if not self.options.bootstrap:
            return None
        import time

        from sequencer.adapters.kafka.lag import DEFAULT_TAIL_LIMIT, read_group
        from sequencer.app.lag_status import LagWindow
        from sequencer.app.monitoring import age_days, lag_document

        s = self.settings
        try:
            reading = asyncio.run(asyncio.wait_for(
                read_group(s.bootstrap_servers, s.app_id, s.topic_events, KafkaConnection.of(s).aiokafka_kwargs(),
                           tail_limit=DEFAULT_TAIL_LIMIT), 10))
        except Exception as exc:  # noqa: BLE001 - shown on the page
            return lag_document(None, topic=s.topic_events, group=s.app_id, rate=None, rate_source=None,
                                measured_at=utc_now_iso(), error=f"{type(exc).__name__}: {exc}")
        # One sample: the status can say OK or ERR (lag and no members); the
        # states that need a window of samples come from a running worker.
        window = LagWindow(1.0)
        now = time.monotonic()
        window.add(now, {p.partition: (p.committed, p.lag) for p in reading.report.partitions},
                   reading.report.members)
        today = self.today or utc_today()
        streams = [{"stream": name, "last_processed_date": last, "age_days": age_days(last, today)}
                   for name, last in sorted(self._checkpoint_dates().items())]
        return lag_document(reading.report, topic=s.topic_events, group=s.app_id, rate=None, rate_source=None,
                            measured_at=utc_now_iso(), statuses=window.statuses(now), status_window_s=None,
                            streams=streams, streams_source="checkpoints", tail=reading.tail)

    def _checkpoint_dates(self) -> dict[str, str | None]:
        """stream -> last processed date in the checkpoint files (what was decided, as far as they tell)."""
        loaded, _ = self.store.load_all()
        return {stream: cp.state.last_processed_date for stream, cp in loaded.items()}

    # --- controls -------------------------------------------------------------------------

    def save(self, streams: list[str], view: View) -> list[str]:
        """"Save state": ask the worker to checkpoint, or rewrite the loaded states' files."""
        messages = []
        if self.worker_running():
            for stream in streams:
                try:
                    done = self.api.checkpoint(stream)
                    messages.append(f"{stream}: checkpoint written by the worker to {done['path']}")
                except (ApiUnavailable, ApiError) as error:
                    messages.append(f"{stream}: not saved ({error})")
            return messages
        for stream in streams:
            state = view.loaded.get(stream)
            if state is None:
                messages.append(f"{stream}: no state loaded, nothing to save")
                continue
            try:
                messages.append(f"{stream}: saved to {self.store.save(state)}")
            except (OlderCheckpoint, CheckpointError, OSError) as error:
                messages.append(f"{stream}: not saved ({error})")
        return messages

    def clear(self, streams: list[str]) -> list[str]:
        """"Clear state": reset the stream in the worker, or delete its checkpoint files."""
        messages = []
        if self.worker_running():
            for stream in streams:
                try:
                    done = self.api.reset(stream)
                    removed = ", ".join(done["removed_checkpoints"]) or "no checkpoint file"
                    messages.append(f"{stream}: reset in the worker ({removed} removed)")
                except (ApiUnavailable, ApiError) as error:
                    messages.append(f"{stream}: not cleared ({error})")
            return messages
        for stream in streams:
            removed = self.store.clear(stream)
            messages.append(f"{stream}: removed {', '.join(str(p) for p in removed)}" if removed
                            else f"{stream}: no checkpoint file to remove")
        return messages




# --- pure helpers for the page ---------------------------------------------------------------

def partition_lag(state: dict[str, Any] | None, lag: dict[str, Any] | None) -> int | None:
    """The lag of the event-topic partition the stream's events come from (None if unknown)."""
    if not state or not lag or not lag.get("partitions"):
        return None
    topic = lag.get("topic")
    for key in state.get("source_offsets") or {}:
        name, _, partition = key.rpartition(":")
        if name == topic and partition.isdigit():
            for row in lag["partitions"]:
                if row["partition"] == int(partition):
                    return row["lag"]
    return None


def window_median(window: list[float], config: SequencerConfig) -> float | None:
    """m of SPEC 5 step 4 for a full window, else None (warm-up)."""
    return median_of_full_window(window, config.median_position) if len(window) >= config.depth else None


def peak_window_rows(state: dict[str, Any], config: SequencerConfig) -> list[dict[str, Any]]:
    """The peak window, oldest first, with the current median and targets as levels to draw."""
    window = list(state["rolling_median_window"])
    m = window_median(window, config)
    n = len(window)
    return [{"position": i - n + 1, "peak": peak, "rolling median": m,
             "rolling median target": state["rolling_median_target"],
             "ladder target": state["median_ladder_target"]} for i, peak in enumerate(window)]


def slot_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Each slot's score history (oldest first) and its sum; the next slot is marked."""
    return [{"slot": slot, "sum": sum(history), "days": len(history),
             "history": " ".join(f"{x:+d}" if x else "0" for x in history),
             "next": slot == state["current_time"]}
            for slot, history in state["time_slot_histories"].items()]


def ladder_summary(state: dict[str, Any], config: SequencerConfig) -> dict[str, Any]:
    spec = config.instruments[state["instrument"]]
    step = state["median_ladder_current_step"]
    return {"base": spec.base, "cap": target_cap(spec.base, config.max_target_pct), "step": step,
            "rung": ladder_rung(spec.base, step),
            "days_at_level": state["median_ladder_days_at_level"],
            "next_slot": state["current_time"], "next_target": state["current_target"],
            "target_mode": config.target_mode, "no_trade_next": state["no_trade_next"]}


DECISION_HISTORY_COLUMNS = ["date", "peak", "rolling_median", "rolling_median_target",
                            "median_ladder_target", "next_target", "ladder_step"]


def decisions_history(path: Path, stream: str, last: int = 250):
    """The stream's last ``last`` decisions from a decisions.csv, as a DataFrame indexed by date."""
    import pandas as pd

    frame = pd.read_csv(path, usecols=["stream", *DECISION_HISTORY_COLUMNS])
    frame = frame[frame["stream"] == stream].drop(columns=["stream"])
    frame = frame.sort_values("date").tail(last)
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.set_index("date")


def freshness_by_stream(lag: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """stream -> its row of the lag document's ``"streams"`` (freshness in trading days)."""
    return {row["stream"]: row for row in (lag or {}).get("streams", [])}


def latency_line(lag: dict[str, Any] | None) -> str:
    """The decision latency as the page shows it."""
    latency = (lag or {}).get("decision_latency")
    if not latency or not latency.get("decisions"):
        return "Decision latency: unknown (measured by a running worker, once it has sent decisions)."
    return (f"Decision latency, record time to decision on the broker: p50 {latency['p50'] * 1000:,.0f} ms, "
            f"p99 {latency['p99'] * 1000:,.0f} ms (last {latency['decisions']:,} decisions).")


def lag_partition_rows(lag: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per partition: committed, end, lag, lag state."""
    return [{k: row.get(k) for k in ("partition", "committed", "end", "lag", "status")}
            for row in (lag or {}).get("partitions", [])]


def lag_point(lag: dict[str, Any] | None, at: dt.datetime) -> dict[str, Any] | None:
    """One point of the lag-over-time series kept by the page."""
    if not lag or lag.get("total_lag") is None:
        return None
    return {"time": at, "total_lag": lag["total_lag"], "processing_rate": lag.get("processing_rate")}
