"""What every peer runner of ``bench/bench_peers.py`` shares: arguments, the fold step, the result file.

A runner is started by ``bench_peers.py`` in the virtualenv of its system
(quix-streams and bytewax pin different confluent-kafka versions from the
project's), so this module imports only the standard library at the top and
the project's pure domain and codecs (``msgpack`` is the one third-party
package they need; the peer virtualenvs install it).

Timing convention, the same in every runner: the clock starts when the first
input record reaches the runner's own code (connecting, group join, topic
checks and state-store opening are start-up, excluded) and stops once the
last decision is flushed to the broker and the states are persisted in the
system's own store (its final checkpoint or snapshot included).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sequencer.app.codecs import decode_event, encode_decision  # noqa: E402
from sequencer.domain import (  # noqa: E402
    Order,
    SequencerConfig,
    StreamState,
    apply_day,
    event_order,
    initial_state,
    state_to_dict,
)

CONFIG = SequencerConfig()


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events-topic", required=True)
    parser.add_argument("--decisions-topic", required=True)
    parser.add_argument("--states-topic", default="", help="a changelog topic for runners that write their own")
    parser.add_argument("--expected", type=int, required=True, help="input records to consume, then stop")
    parser.add_argument("--work", type=Path, required=True, help="a fresh folder for the system's state")
    parser.add_argument("--result", type=Path, required=True, help="where the result JSON goes")
    parser.add_argument("--variant", default="", help="system-specific variant (quix: idiomatic|tuned)")
    parser.add_argument("--group", default="peers-bench")
    return parser.parse_args()


def fold_step(state: StreamState | None, value: bytes) -> tuple[StreamState, bytes | None]:
    """One event on one stream's state: decode + validate, order check, ``apply_day``, encode the decision.

    The bench input is clean (every event new and valid), so a bad record
    raises here instead of being dead-lettered: a peer that loses or garbles
    a record fails the run rather than skewing its rate.
    """
    event = decode_event(value, CONFIG)
    if state is None:
        state = initial_state(event.stream, CONFIG)
    if event_order(state, event.date) is not Order.NEW:
        return state, None
    new_state, decision = apply_day(state, event, CONFIG)
    return new_state, (None if decision is None else encode_decision(decision))


class Stopwatch:
    """First record in, last state persisted; counts events in between."""

    def __init__(self) -> None:
        self.first: float | None = None
        self.events = 0

    def start(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def tick(self) -> int:
        """One event more (starting the clock on the first); returns the count."""
        self.start()
        self.events += 1
        return self.events

    def seconds(self) -> float:
        if self.first is None:
            raise RuntimeError("no record was processed")
        return time.perf_counter() - self.first


def write_result(path: Path, *, seconds: float, events: int, states: list[StreamState] | list[dict[str, Any]],
                 note: str = "") -> None:
    """The runner's answer: its own timing and the final states read back from its store."""
    docs = [state if isinstance(state, dict) else state_to_dict(state) for state in states]
    path.write_text(json.dumps({"seconds": seconds, "events": events, "states": docs, "note": note}))
