"""The grid of a sweep: ``--grid KEY=V1,V2,...`` axes and their cartesian product.

A key is a SPEC 2 config key (``depth``, ``target_mode``, ...) or a SPEC 8.2
trade rule as ``rules.KEY``. Values are written as on a command line and read
as the key needs them: ``true``/``false``, numbers, ``none`` for null (or for
an empty list), a list as ``Mon+Fri``. Whether a value is acceptable is
decided by the class that owns the key (``SequencerConfig``, the trade rules),
so a grid accepts exactly what a config file accepts.

A value that fails in every combination is a bad value and the whole grid is
refused before any work; a combination that fails while each of its values
works elsewhere (``median_position`` above ``depth``) is impossible, and is
skipped with its reason.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from sequencer.domain import ConfigError, SequencerConfig
from sequencer.domain.config import RULE_KEYS
from sequencer.domain.trade_rules import TradeRules

RULES_PREFIX = "rules."

#: More configurations than this is almost surely a typo in a grid (and
#: would take hours); refused before any work.
MAX_CONFIGURATIONS = 100_000

_INTEGER = re.compile(r"[+-]?\d+")

#: Builds the trade rules from a mapping of rule keys (as a config file's
#: ``rules`` table holds them); raises ConfigError for an unknown key or a bad value.
RulesFactory = Callable[[Mapping[str, Any]], Any]

#: The trade rules whose value is a list (``Mon+Fri`` on the command line).
LIST_RULE_KEYS = tuple(f.name for f in dataclasses.fields(TradeRules) if f.default == ())


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid`` argument: a key and its values, parsed, in the order given."""

    key: str
    values: tuple[Any, ...]

    @property
    def is_rule(self) -> bool:
        return self.key.startswith(RULES_PREFIX)

    @property
    def name(self) -> str:
        """The key without its ``rules.`` prefix."""
        return self.key[len(RULES_PREFIX):] if self.is_rule else self.key


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of the grid: its axis values, the config and the trade rules."""

    index: int  # position in the grid's product, for a stable order among equals
    values: tuple[Any, ...]
    config: SequencerConfig
    rules: Any


@dataclass(frozen=True)
class SkippedPoint:
    """An impossible combination, and why."""

    values: tuple[Any, ...]
    reason: str


@dataclass(frozen=True)
class GridPlan:
    axes: tuple[GridAxis, ...]
    points: tuple[SweepPoint, ...]
    skipped: tuple[SkippedPoint, ...]


def parse_grid_argument(text: str, list_rule_keys: Iterable[str] = LIST_RULE_KEYS) -> GridAxis:
    """``"depth=9,13"`` -> GridAxis("depth", (9, 13)); the key must be known.

    ``list_rule_keys`` names the rules whose value is a list (``Mon+Fri``).
    """
    key, sep, raw_values = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--grid {text!r}: expected KEY=V1,V2,...")
    list_rule_keys = set(list_rule_keys)
    if key.startswith(RULES_PREFIX):
        as_list = key[len(RULES_PREFIX):] in list_rule_keys
    elif key in RULE_KEYS:
        as_list = False
    else:
        raise ConfigError(
            f"--grid {text!r}: unknown key {key!r}; keys are {', '.join(RULE_KEYS)} "
            f"and rules.KEY for a trade rule")
    texts = [part.strip() for part in raw_values.split(",")]
    if not raw_values.strip() or any(not part for part in texts):
        raise ConfigError(f"--grid {text!r}: every value must be non-empty (values are separated by commas)")
    values = tuple(parse_value(part, as_list=as_list) for part in texts)
    keyed = [(type(value), value) for value in values]  # so that 1 and true differ
    for i, value in enumerate(keyed):
        if value in keyed[:i]:
            raise ConfigError(f"--grid {text!r}: value {texts[i]!r} is listed twice")
    return GridAxis(key, values)


def parse_value(text: str, *, as_list: bool = False) -> Any:
    """A command-line value as the config file would hold it."""
    if as_list:
        if text.lower() in ("none", "null", "[]"):
            return ()
        return tuple(int(item) if _INTEGER.fullmatch(item) else item
                     for item in (part.strip() for part in text.split("+")))
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def format_value(value: Any) -> str:
    """The cell of a grid value in sweep.csv; ``parse_value`` reads it back."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (tuple, list)):
        return "+".join(str(item) for item in value) if value else "none"
    return str(value)


def plan_grid(axes: Iterable[GridAxis], base_config: SequencerConfig,
              base_rules: Mapping[str, Any], make_rules: RulesFactory = TradeRules.from_mapping) -> GridPlan:
    """Every combination of ``axes`` over the base config and rules.

    Raises ConfigError, before any work, for a key given twice, a grid too
    large, a value that fails in every combination, or a grid with no
    possible combination.
    """
    axes = tuple(axes)
    seen: set[str] = set()
    for axis in axes:
        if axis.key in seen:
            raise ConfigError(f"--grid {axis.key} is given twice; list all its values in one --grid")
        seen.add(axis.key)
    for axis in axes:
        _refuse_same_configuration(axis, base_config, base_rules, make_rules)
    size = math.prod(len(axis.values) for axis in axes)
    if size > MAX_CONFIGURATIONS:
        raise ConfigError(f"the grid has {size:,} configurations, more than {MAX_CONFIGURATIONS:,}")

    points: list[SweepPoint] = []
    skipped: list[SkippedPoint] = []
    first_failure: dict[tuple[int, int], str] = {}  # (axis, value index) -> a reason it failed
    works: set[tuple[int, int]] = set()
    for index, combination in enumerate(itertools.product(*(range(len(a.values)) for a in axes))):
        values = tuple(axis.values[i] for axis, i in zip(axes, combination))
        try:
            config, rules = _build(axes, values, base_config, base_rules, make_rules)
        except ConfigError as error:
            skipped.append(SkippedPoint(values, str(error)))
            for a, i in enumerate(combination):
                first_failure.setdefault((a, i), str(error))
            continue
        points.append(SweepPoint(index, values, config, rules))
        works.update(enumerate(combination))

    never = [ai for ai in first_failure if ai not in works]
    if never:
        # Blame the values that fail on their own over the base; a value that
        # only fails beside them is not the cause. When none fails alone, each
        # fails with every value of another key (median_position above every depth).
        alone = {}
        for a, i in never:
            try:
                _build(axes[a:a + 1], (axes[a].values[i],), base_config, base_rules, make_rules)
            except ConfigError as error:
                alone[(a, i)] = str(error)
        reasons = alone or {ai: first_failure[ai] for ai in never}
        bad = [f"{axes[a].key}={format_value(axes[a].values[i])}: {reason}"
               for (a, i), reason in sorted(reasons.items())]
        raise ConfigError("bad grid value" + ("s" if len(bad) > 1 else "") + ": " + "; ".join(bad))
    if not points:  # no axes at all still gives the base configuration
        raise ConfigError("no configuration of the grid is possible")
    return GridPlan(axes, tuple(points), tuple(skipped))


def _refuse_same_configuration(axis: GridAxis, base_config: SequencerConfig, base_rules: Mapping[str, Any],
                               make_rules: RulesFactory) -> None:
    """Refuse two values of ``axis`` that are one configuration (``max_target_pct=400,400.0``,
    ``rules.skip_weekdays=Mon+Fri,Fri+Mon``): each would be a row of its own with the
    same metrics. An axis's values are set alone, so two that build one configuration
    over the base do so beside any other values. A value that fails is left to
    `plan_grid`'s checks."""
    built: list[tuple[Any, Any]] = []
    for value in axis.values:
        try:
            config, rules = _build((axis,), (value,), base_config, base_rules, make_rules)
        except ConfigError:
            continue
        for earlier, (earlier_config, earlier_rules) in built:
            if earlier_config == config and earlier_rules == rules:
                raise ConfigError(f"--grid {axis.key}: values {format_value(earlier)!r} and {format_value(value)!r} "
                                  "are one configuration; list it once")
        built.append((value, (config, rules)))


def point_of_row(cells: Mapping[str, str], base_config: SequencerConfig, base_rules: Mapping[str, Any],
                 make_rules: RulesFactory = TradeRules.from_mapping) -> SweepPoint:
    """The configuration of one sweep.csv row (its grid cells by key) over the sweep's base."""
    axes = [parse_grid_argument(f"{key}={cell}") for key, cell in cells.items()]
    return plan_grid(axes, base_config, base_rules, make_rules).points[0]


def _build(axes: tuple[GridAxis, ...], values: tuple[Any, ...], base_config: SequencerConfig,
           base_rules: Mapping[str, Any], make_rules: RulesFactory) -> tuple[SequencerConfig, Any]:
    config_values: dict[str, Any] = {}
    rule_values: dict[str, Any] = dict(base_rules)
    for axis, value in zip(axes, values):
        if axis.is_rule:
            rule_values[axis.name] = list(value) if isinstance(value, tuple) else value
        else:
            config_values[axis.key] = _config_value(axis.key, value)
    try:
        config = dataclasses.replace(base_config, **config_values)
    except (TypeError, ValueError) as error:  # a type the config's own checks did not expect
        raise ConfigError(str(error)) from None
    return config, make_rules(rule_values)


def _config_value(key: str, value: Any) -> Any:
    # A config file's max_target_pct = 400.0 means 400 (SequencerConfig.from_mapping
    # does the same), so both give one config_id.
    if key == "max_target_pct" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
