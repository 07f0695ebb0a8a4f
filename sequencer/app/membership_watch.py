"""Whether this worker may still own its partitions: the fencing Kafka transactions would give.

A worker frozen past its session timeout (a long GC or VM pause, SIGSTOP) is
dropped from the group, and its partitions go to others. It learns that
only at its next heartbeat, but when it wakes its batch in flight runs on at
once: without fencing (the embedded broker has no transactions) its states
would reach the changelog after the new owner's newer ones, and a later
restore would start from them.

`MembershipWatch` notices such a freeze from the worker's own loop: a tick
every ``TICK_S``; when the loop was silent for longer than the session
timeout, or since such a silence no assignment has come and less than
``settle_s`` has passed, `doubt` says why. The batch commit asks it before it
writes states (`batch_commit.BatchCommit`, step 3): a doubtful batch fails
like any other failed step (nothing written, folded again after the group
has settled, on the partitions it then owns). A freeze after that check, in
the milliseconds the changelog records take to leave, stays possible.

A frozen *broker* is not such a silence and needs no doubt: every member's
loop runs on, and what a member writes when the broker runs again lands
before any rebalance can hand its partitions to another.

No clock of its own: the worker passes ``time.monotonic`` (which runs on
while a process is stopped), the tests a fake.
"""

from __future__ import annotations

from typing import Callable

#: Seconds between two ticks of the worker's loop.
TICK_S = 0.5


class MembershipWatch:
    def __init__(self, session_timeout_s: float, clock: Callable[[], float]) -> None:
        self.session_timeout_s = session_timeout_s
        #: After a silence, how long to doubt when no assignment comes: the group
        #: had its session timeout to drop us, and a rebalance to tell us.
        self.settle_s = 2 * session_timeout_s
        self._clock = clock
        #: None until the first tick: the worker's start (imports, services, the
        #: group join) is no silence; no batch is in flight before it.
        self._last_tick: float | None = None
        self._doubt_until: float | None = None
        self.silences = 0  # how many times the loop was silent past the session timeout

    def tick(self) -> None:
        """The loop ran (a timer calls it every ``TICK_S``; a check calls it too)."""
        now = self._clock()
        if self._last_tick is not None and now - self._last_tick > self.session_timeout_s:
            self.silences += 1
            self._doubt_until = now + self.settle_s
        self._last_tick = now

    def assigned(self) -> None:
        """An assignment came after the silence: the partitions held now are ours."""
        self._doubt_until = None
        self._last_tick = self._clock()

    def doubt(self) -> str | None:
        """Why this worker may not own its partitions now, or None."""
        silent = 0.0 if self._last_tick is None else self._clock() - self._last_tick
        self.tick()
        if silent > self.session_timeout_s:
            return (f"the worker did not run for {silent:.1f} s, longer than its session timeout "
                    f"({self.session_timeout_s:g} s): the group may have given its partitions away")
        if self._doubt_until is not None and self._clock() < self._doubt_until:
            return ("the worker did not run for longer than its session timeout a moment ago and "
                    "has not been assigned partitions since")
        self._doubt_until = None
        return None
