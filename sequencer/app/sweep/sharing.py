"""Which configurations of a sweep can share one fold.

A sweep row is the SPEC 8.3 metrics of a configuration's decisions after its
trade rules. The metrics read only a decision's trade projection: stream,
instrument, date, traded slot, result, slot sums, time change and the trade
(traded, profit, profit_usd). In the fold (domain/fold.py) three SPEC 2 keys
never reach that projection:

- ``target_mode`` picks which target is ``current_target`` (step 5); the fold
  never reads ``current_target`` back, and a trade's profit is the recorded
  one (SPEC 8.1), not re-simulated at another target.
- ``max_target_pct`` caps the rolling and ladder targets (step 4); the median,
  the windows and ``no_trade_next`` come before the cap.
- ``promotion_days`` moves the ladder step and days at level (step 4), which
  feed only ``median_ladder_target``.

Slot choice (``current_time``) reads only the histories; ``no_trade_next``
reads the median, ``no_trade_on_low_median`` and the base. So configurations
that differ only in these keys (and in trade rules, applied after the fold)
give the same trade projections, and one fold serves them all.
tests/system/test_sweep.py checks the claim by folding under each such key and
comparing projections, and that a key outside the set does change them.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Iterable

from sequencer.domain import SequencerConfig
from sequencer.app.sweep.grid import SweepPoint

#: SPEC 2 keys that change no trade projection (see the module docstring).
TRADE_NEUTRAL_KEYS: dict[str, Any] = {
    "target_mode": "rolling_median",
    "max_target_pct": 400,
    "promotion_days": 2,
}


def fold_config(config: SequencerConfig) -> SequencerConfig:
    """The representative of ``config``'s fold group: trade-neutral keys at fixed values."""
    return dataclasses.replace(config, **TRADE_NEUTRAL_KEYS)


@dataclass(frozen=True)
class FoldGroup:
    """Configurations sharing one fold, split by their trade rules.

    ``rule_groups`` holds, per distinct rules, the points with those rules:
    their metrics are computed once, as they are one function of the same
    decisions and the same rules.
    """

    config: SequencerConfig
    rule_groups: tuple[tuple[SweepPoint, ...], ...]

    @property
    def points(self) -> tuple[SweepPoint, ...]:
        return tuple(p for group in self.rule_groups for p in group)


def group_points(points: Iterable[SweepPoint]) -> list[FoldGroup]:
    """Points grouped by shared fold, then by equal rules; groups in grid order."""
    folds: dict[str, tuple[SequencerConfig, dict[Any, list[SweepPoint]]]] = {}
    for point in points:
        shared = fold_config(point.config)
        key = json.dumps(shared.canonical(), sort_keys=True)
        _, by_rules = folds.setdefault(key, (shared, {}))
        by_rules.setdefault(_rules_key(point.rules), []).append(point)
    return [FoldGroup(shared, tuple(tuple(group) for group in by_rules.values()))
            for shared, by_rules in folds.values()]


def _rules_key(rules: Any) -> Any:
    # Trade rules are a frozen value; equal rules give equal metrics.
    try:
        hash(rules)
        return rules
    except TypeError:
        return repr(rules)
