"""The one place that reads the UTC clock for the data's rules.

The fold is pure and never reads a clock; the date rules that need "today"
(SPEC 3: no day event dated after today in UTC plus one day of grace) get the
limit passed in from the edge, and the edges get it here.
"""

from __future__ import annotations

import datetime as _dt

from sequencer.domain.events import latest_event_date


def utc_today() -> _dt.date:
    return _dt.datetime.now(_dt.timezone.utc).date()


def utc_now_iso() -> str:
    """Now in UTC, to the second (``2025-01-15T10:00:00+00:00``): checkpoints' saved_at, measurements."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def latest_event_date_now() -> str:
    """The latest date a day event may carry now (ISO)."""
    return latest_event_date(utc_today())
