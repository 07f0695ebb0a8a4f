"""Progress bars on a terminal (rate and ETA), silent otherwise.

The terminal is an edge like a file: the bar lives under adapters so that both
programs may show it, ``sequencer``'s commands and the ``streamer`` (which may
import sequencer's adapters but not its cli).
"""

from __future__ import annotations

import sys
from typing import Any


def progress_bar(total: int | None, desc: str, unit: str = "event") -> Any:
    """A tqdm bar on a terminal; elsewhere a silent one of the same few methods
    (``update``, ``refresh``, ``close``, ``total``, a context manager), without
    importing tqdm: its import reads its version through importlib.metadata,
    17-40 ms of every command run without a terminal (scripts, CI, benchmarks)."""
    if not sys.stderr.isatty():
        return SilentBar(total)
    from tqdm import tqdm

    # tqdm's monitor is a thread; a replay forks its partitions while the bar
    # is shown, and a fork should not copy a thread that may hold a lock.
    tqdm.monitor_interval = 0
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True,
                leave=False, mininterval=0.2)


class SilentBar:
    """What ``progress_bar`` gives without a terminal: counts, shows nothing."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.n = 0

    def update(self, count: int = 1) -> None:
        self.n += count

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "SilentBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
