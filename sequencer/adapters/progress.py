"""Progress bars on a terminal (rate and ETA), silent otherwise.

The terminal is an edge like a file: the bar lives under adapters so that both
programs may show it, ``sequencer``'s commands and the ``streamer`` (which may
import sequencer's adapters but not its cli).
"""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int | None, desc: str, unit: str = "event") -> Any:
    from tqdm import tqdm

    # tqdm's monitor is a thread; a replay forks its partitions while the bar
    # is shown, and a fork should not copy a thread that may hold a lock.
    tqdm.monitor_interval = 0
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True,
                disable=not sys.stderr.isatty(), leave=False, mininterval=0.2)
