"""What a worker is doing now, and why it folds nothing when it does not.

A restarted worker can sit for half a minute without folding: the group
waits for a member that was killed (it never said goodbye) until the session
timeout passes, then rebalances; then the tables are restored from their
changelogs. `WorkerStatus` names the phase, logs each change and, while
nothing is folded, repeats the reason every ``WAIT_LOG_S`` seconds. The
worker's ``GET /status`` serves `as_dict`.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

logger = logging.getLogger(__name__)

#: Seconds between repeated "still waiting" log lines.
WAIT_LOG_S = 10.0
#: Seconds without a folded batch after which a folding worker reads as idle.
IDLE_AFTER_S = 10.0

#: Every phase a worker reports, in the order of a start (``retrying``: a failed
#: batch commit, until a batch lands).
PHASES = ("starting", "waiting", "rebalancing", "recovering", "idle", "folding", "retrying")

#: Phases in which the reason is the status's own business (set by the worker).
_SET_BY_WORKER = {"retrying"}


class WorkerStatus:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.phase = "starting"
        self.reason = "joining the consumer group"
        self.since = clock()
        self.last_folded_at: float | None = None
        self._logged_at = self.since

    def set(self, phase: str, reason: str) -> None:
        if (phase, reason) == (self.phase, self.reason):
            return
        now = self._clock()
        if phase != self.phase:
            self.since = now
        self.phase, self.reason = phase, reason
        self._logged_at = now
        logger.info("worker %s: %s", phase, reason)

    def folded(self) -> None:
        self.last_folded_at = self._clock()
        if self.phase != "folding":
            self.phase, self.reason, self.since = "folding", "folding day events", self.last_folded_at

    def observe(self, *, recovering: bool, assigned: bool, session_timeout_s: float) -> None:
        """Called every few seconds by the worker: update the phase, log while waiting."""
        now = self._clock()
        if self.phase in _SET_BY_WORKER:
            pass
        elif recovering:
            self.set("recovering", "restoring the tables from their changelogs before folding")
        elif not assigned:
            self.set("waiting", "no partition assigned yet: the group rebalances once every member "
                                "has joined; a member killed without leaving is waited for until its "
                                f"session timeout ({session_timeout_s:g} s) passes")
        elif self.phase != "folding" or (self.last_folded_at is not None
                                         and now - self.last_folded_at >= IDLE_AFTER_S):
            self.set("idle", "partitions assigned and tables restored; no new day events to fold")
        if self.phase != "folding" and now - self._logged_at >= WAIT_LOG_S:
            self._logged_at = now
            logger.info("worker has folded nothing for %.0f s (%s): %s",
                        now - (self.last_folded_at if self.last_folded_at is not None else self.since),
                        self.phase, self.reason)

    def as_dict(self) -> dict[str, Any]:
        now = self._clock()
        return {"phase": self.phase, "reason": self.reason, "for_s": round(now - self.since, 1),
                "since_last_fold_s": None if self.last_folded_at is None
                else round(now - self.last_folded_at, 1)}
