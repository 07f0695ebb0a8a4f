"""The decision the fold emits for each applied event (SPEC 5), and its trade (SPEC 8.1)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from .errors import SequencerError


class Decision(NamedTuple):
    """What the stream trades next, and why (a NamedTuple: one is built per event)."""

    stream: str
    instrument: str
    date: str
    traded_slot: str
    result: str | None
    peak: float | None
    slot_sums: Mapping[str, int]
    time_change: bool
    next_slot: str
    rolling_median: float | None
    rolling_median_target: float
    median_ladder_target: float
    ladder_step: int
    days_at_level: int
    next_target: float
    no_trade_next: bool
    time_reason: str
    target_reason: str
    # The trade this decision records (SPEC 8.1): the slot chosen the day
    # before, taken unless that state said no trade; profit as recorded.
    traded: bool
    profit: float
    profit_usd: float

    def to_dict(self) -> dict[str, Any]:
        doc = dict(zip(DECISION_FIELDS, self))  # a tuple in field order: no getattr per field
        doc["slot_sums"] = dict(self.slot_sums)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> "Decision":
        missing = [name for name in DECISION_FIELDS if name not in doc]
        if missing and set(missing) <= set(TRADE_FIELDS):
            raise SequencerError(
                "decision written before trades were recorded (no traded, profit, profit_usd): "
                "replay the events again to get them")
        if missing:
            raise SequencerError(f"decision lacks fields: {', '.join(missing)}")
        values = {name: doc[name] for name in DECISION_FIELDS}
        values["slot_sums"] = MappingProxyType(dict(doc["slot_sums"]))
        return cls(**values)


DECISION_FIELDS: tuple[str, ...] = Decision._fields

#: The fields SPEC 8.1 added; decisions written before them lack exactly these.
TRADE_FIELDS: tuple[str, ...] = ("traded", "profit", "profit_usd")
