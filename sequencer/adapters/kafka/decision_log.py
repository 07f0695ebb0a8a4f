"""Reading the decisions topic back, and waiting for the worker to catch up."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Mapping

from sequencer.app.codecs import decode_dead_letter, decode_decision
from sequencer.domain import Decision
from sequencer.adapters.kafka.lag import committed_offsets
from sequencer.adapters.kafka.log_reader import read_topic


async def read_decisions(bootstrap: str, topic: str, *,
                         security: Mapping[str, Any] | None = None,
                         problems: list[str] | None = None) -> list[Decision]:
    """All decisions on ``topic``, one per (stream, date), in (date, stream) order.

    Delivery is at least once, so a decision can appear twice after a crash;
    repeats carry the same content and are dropped here by (stream, date).
    Reads each partition to its end as the fetch responses report it (see
    ``log_reader``), so it returns as soon as it has read everything.
    With ``problems``, a record that is not a decision of this version is
    skipped and described there (partition, offset, why); without it, it raises.
    """
    found: dict[tuple[str, str], Decision] = {}

    def take(records: list) -> None:
        for record in records:
            try:
                decision = decode_decision(record.value)
            except Exception as error:  # noqa: BLE001 - msgpack raises many types on foreign bytes
                if problems is None:
                    raise
                problems.append(f"{topic}[{record.partition}]@{record.offset}: {error}")
                continue
            found.setdefault((decision.stream, decision.date), decision)

    await read_topic(bootstrap, topic, take, security=security)
    return sorted(found.values(), key=lambda d: (d.date, d.stream))


async def read_dead_letters(bootstrap: str, topic: str, *,
                            security: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every dead letter on ``topic`` (msgpack maps: reason, stream, source_*, key, value)."""
    import msgpack  # for its error types; the letters are read by their codec

    letters: list[dict[str, Any]] = []

    def take(records: list) -> None:
        for record in records:
            try:
                letter = decode_dead_letter(record.value)
            except (ValueError, msgpack.UnpackException):
                continue  # not ours: another writer shares the topic
            if isinstance(letter, dict):
                letters.append(letter)

    await read_topic(bootstrap, topic, take, security=security)
    return letters


async def wait_until_consumed(bootstrap: str, group: str, topic: str, ends: Mapping[int, int], *,
                              timeout_s: float = 600.0, on_progress: Callable[[int], None] | None = None,
                              security: Mapping[str, Any] | None = None,
                              alive: Callable[[], bool] = lambda: True) -> bool:
    """Wait until the group's committed offsets reach ``ends`` (partition -> next offset)."""
    deadline = time.monotonic() + timeout_s
    done_before = 0
    while time.monotonic() < deadline and alive():
        try:
            committed = await committed_offsets(bootstrap, group, topic, security)
        except Exception:  # noqa: BLE001 - the group may not exist yet
            committed = {}
        done = sum(min(committed.get(p, 0), end) for p, end in ends.items())
        if on_progress is not None and done > done_before:
            on_progress(done - done_before)
            done_before = done
        if all(committed.get(p, 0) >= end for p, end in ends.items()):
            return True
        await asyncio.sleep(0.25)
    return False
