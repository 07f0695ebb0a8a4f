"""The worker's watch over its consumer group: lag readings (cached briefly),
a sample every few seconds into the lag-state window (`sequencer.app.lag_status`),
and the statuses judged from it. Used by the HTTP views (`sequencer.adapters.http.views`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Callable

from sequencer.adapters.kafka.connection import KafkaConnection
from sequencer.app.lag_report import GroupReading
from sequencer.adapters.kafka.lag import read_group
from sequencer.app.lag_status import LagWindow, Status

if TYPE_CHECKING:
    from sequencer.settings import Settings

logger = logging.getLogger(__name__)

#: A lag reading is reused for this many seconds: a dashboard refreshing every
#: second and a Prometheus scrape do not each open new broker connections.
LAG_CACHE_S = 2.0
#: Seconds a lag reading may take before the endpoint answers without offsets.
LAG_TIMEOUT_S = 10.0
#: Seconds between the worker's samples of its group's offsets.
SAMPLE_EVERY_S = 5.0
#: Seconds of samples a lag state is judged over (Burrow's window); with a
#: sample every 5 s, 12 samples. A partition is STOP after a window without a commit.
STATUS_WINDOW_S = 60.0
#: Unconsumed records a worker reads at most per reading for the freshness. The
#: read runs on the worker's event loop (decoding is CPU), so it is kept a tenth
#: of what ``sequencer lag`` reads; past it ``days_behind`` is a lower bound.
WORKER_TAIL_LIMIT = 5_000


class GroupMonitor:
    """Lag readings of ``settings.app_id`` on the event topic, and their window of samples.

    ``activity`` counts the batches the worker has handled: it tells a worker
    that keeps working without moving its offset (STALL) from one that stopped.
    """

    def __init__(self, settings: "Settings", activity: Callable[[], int],
                 window_s: float = STATUS_WINDOW_S) -> None:
        self.settings = settings
        self.activity = activity
        self.window = LagWindow(window_s)
        self._cached: tuple[float, GroupReading | None, str | None] | None = None
        self._lock = asyncio.Lock()

    async def read(self, with_tail: bool = False) -> tuple[GroupReading | None, str | None]:
        """A reading (with the unconsumed tail's dates if asked) and the error that
        prevented one; each successful reading is also a sample of the window."""
        async with self._lock:
            now = time.monotonic()
            cached = self._cached
            if (cached is not None and now - cached[0] < LAG_CACHE_S
                    and (not with_tail or (cached[1] is not None and cached[1].tail is not None))):
                return cached[1], cached[2]
            settings = self.settings
            reading: GroupReading | None = None
            error: str | None = None
            try:
                reading = await asyncio.wait_for(
                    read_group(settings.bootstrap_servers, settings.app_id, settings.topic_events,
                               KafkaConnection.of(settings).aiokafka_kwargs(),
                               tail_limit=WORKER_TAIL_LIMIT if with_tail else 0),
                    LAG_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - reported in the document, not raised
                error = f"{type(exc).__name__}: {exc}"
                logger.warning("lag not available: %s", error)
            taken = time.monotonic()
            if reading is not None:
                report = reading.report
                self.window.add(taken, {p.partition: (p.committed, p.lag) for p in report.partitions},
                                report.members, self.activity())
            self._cached = (taken, reading, error)
            return reading, error

    def statuses(self) -> dict[int, Status]:
        return self.window.statuses(time.monotonic())
