"""Slot times: ``HH:MM``, the one spelling of a slot in sessions (SPEC 2) and day events (SPEC 3).

Both the config and the events read slot times, so they live below both (the config
imported the events for it, and the events import the config).
"""

from __future__ import annotations

import re
from typing import Any

from .errors import InvalidEvent, shown

_SLOT_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::00)?")

_SLOT_NAMES: dict[str, str] = {}  # raw spelling -> slot; a few dozen entries at most


def normalize_slot(value: Any) -> str:
    """``7:30`` and ``07:30:00`` name the slot ``07:30``."""
    if type(value) is str:
        slot = _SLOT_NAMES.get(value)
        if slot is not None:
            return slot
    if isinstance(value, str):
        match = _SLOT_TIME.fullmatch(value.strip())
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            slot = f"{int(match.group(1)):02d}:{match.group(2)}"
            if len(_SLOT_NAMES) < 1024:
                _SLOT_NAMES[value] = slot
            return slot
    raise InvalidEvent(f"malformed slot time {shown(value)}: expected HH:MM")
