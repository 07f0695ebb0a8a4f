"""Lag states of the worker group, after Burrow's evaluation rules, over a
sliding window of samples. Pure: the caller passes the samples and ``now``.

Per partition, from its samples (committed offset, lag, when taken) in the
window, the newest last:

========  ==================================================================
``OK``     the lag is 0 now, or nothing below applies
``REWIND`` the committed offset moved back (a rebuild, a seek back): informational
``WARN``   the lag grew over the window: it never went down between two
           samples and the newest is larger than the oldest
``STALL``  the worker keeps handling batches (its commits keep coming) but the
           committed offset has not moved for the whole window, while lag > 0
``STOP``   no commit (the committed offset did not move, and no activity is
           seen) for longer than the window, while lag > 0
``ERR``    lag > 0 and the group has no members
========  ==================================================================

The rules are tried from ``ERR`` down; the first that holds wins. A commit
the broker answers for is only seen when the offset moves (OffsetFetch
carries no commit time), so "commits keep coming" is the worker's own
activity count (batches handled); a reader outside the worker has none and
reports a partition whose offset stands still as ``STOP``. ``STALL`` and
``STOP`` need samples spanning the whole window; ``WARN`` needs two samples.

The group's status is its worst partition's, in the order of ``Status``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence


class Status(enum.IntEnum):
    """Lag states, least to most severe (the /metrics gauge value)."""

    OK = 0
    REWIND = 1
    WARN = 2
    STALL = 3
    STOP = 4
    ERR = 5


@dataclass(frozen=True, slots=True)
class OffsetSample:
    """One partition as seen at ``at`` (monotonic seconds)."""

    at: float
    committed: int | None
    lag: int
    #: Batches the worker had handled when the sample was taken; None outside the worker.
    activity: int | None = None


def partition_status(samples: Sequence[OffsetSample], *, now: float, window_s: float,
                     members: int | None) -> Status:
    """The state of one partition (see the module docstring). ``samples`` oldest first;
    the newest sample older than the window is kept as the window's start point."""
    if not samples:
        return Status.OK
    newest = samples[-1]
    if newest.lag <= 0:
        return Status.OK
    if members == 0:
        return Status.ERR
    window = in_window(samples, now=now, window_s=window_s)
    offsets = [s.committed for s in window]
    known = [o for o in offsets if o is not None]
    if any(b < a for a, b in zip(known, known[1:])):
        return Status.REWIND
    spans_window = len(window) >= 2 and newest.at - window[0].at >= window_s
    if spans_window and len(set(offsets)) == 1:
        activities = [s.activity for s in window]
        if None not in activities and activities[-1] != activities[0]:
            return Status.STALL
        return Status.STOP
    lags = [s.lag for s in window]
    if len(lags) >= 2 and lags[-1] > lags[0] and all(b >= a for a, b in zip(lags, lags[1:])):
        return Status.WARN
    return Status.OK


def in_window(samples: Sequence[OffsetSample], *, now: float, window_s: float) -> list[OffsetSample]:
    """The samples taken within ``window_s`` of ``now``, plus the newest one before them
    (what the window's first change is measured from)."""
    start = now - window_s
    first = 0
    for index, sample in enumerate(samples):
        if sample.at < start:
            first = index
    return list(samples[first:])


def group_status(statuses: Iterable[Status]) -> Status:
    """The worst partition's status; ``OK`` for a group without partitions."""
    return max(statuses, default=Status.OK)


class LagWindow:
    """Samples per partition over the last ``window_s`` seconds (plus the one before),
    and the group's member count of the newest sample."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.samples: dict[int, list[OffsetSample]] = {}
        self.members: int | None = None

    def add(self, at: float, partitions: Mapping[int, tuple[int | None, int]], members: int | None,
            activity: int | None = None) -> None:
        """``partitions``: partition -> (committed offset, lag) at ``at``."""
        self.members = members
        for partition, (committed, lag) in partitions.items():
            kept = self.samples.setdefault(partition, [])
            if kept and kept[-1].at > at:
                continue  # an older reading that finished late
            kept.append(OffsetSample(at, committed, lag, activity))
            kept[:] = in_window(kept, now=at, window_s=self.window_s)
        for partition in set(self.samples) - set(partitions):
            del self.samples[partition]  # gone from the topic (recreated with fewer partitions)

    def statuses(self, now: float) -> dict[int, Status]:
        return {p: partition_status(s, now=now, window_s=self.window_s, members=self.members)
                for p, s in sorted(self.samples.items())}
