"""Trade rules (SPEC 8.2): which decisions the report counts as traded.

Report only: the rules change no state and no decision, and do not enter
``config_id``. ``TradeRules.from_mapping`` is the way in from a config file's
``rules`` table or a ``--rules`` file; it refuses unknown keys and bad values
with a message naming both, before any work starts.

>>> rules = TradeRules.from_mapping({"skip_weekdays": ["Mon"], "min_slot_sum": -4})
>>> rules.skip_weekdays, rules.min_slot_sum
(('Mon',), -4)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import ConfigError

WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

RULES_KEYS: tuple[str, ...] = ("skip_weekdays", "skip_days_of_month", "skip_after_loss", "min_slot_sum")


@dataclass(frozen=True, slots=True)
class TradeRules:
    """The four optional rules; the defaults skip nothing.

    ``skip_weekdays`` holds names ``Mon``..``Sun`` in weekday order,
    ``skip_days_of_month`` days 1..31 ascending (each once), so two rule sets
    that skip the same days compare equal.
    """

    skip_weekdays: tuple[str, ...] = ()
    skip_days_of_month: tuple[int, ...] = ()
    skip_after_loss: bool = False
    min_slot_sum: int | float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "skip_weekdays", _weekdays(self.skip_weekdays))
        object.__setattr__(self, "skip_days_of_month", _days_of_month(self.skip_days_of_month))
        if not isinstance(self.skip_after_loss, bool):
            raise ConfigError(f"rules: skip_after_loss must be true or false, got {self.skip_after_loss!r}")
        value = self.min_slot_sum
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            raise ConfigError(f"rules: min_slot_sum must be a number or null, got {value!r}")

    @property
    def skips_nothing(self) -> bool:
        return self == NO_RULES

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data with every key (the report's ``rules``)."""
        return {
            "skip_weekdays": list(self.skip_weekdays),
            "skip_days_of_month": list(self.skip_days_of_month),
            "skip_after_loss": self.skip_after_loss,
            "min_slot_sum": self.min_slot_sum,
        }

    @classmethod
    def from_mapping(cls, data: Any) -> "TradeRules":
        """Rules from parsed JSON or TOML; unknown keys and bad values are a ``ConfigError``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"rules must be a table of {', '.join(RULES_KEYS)}, got {data!r}")
        unknown = sorted(str(key) for key in data if key not in RULES_KEYS)
        if unknown:
            raise ConfigError(f"rules: unknown keys {', '.join(unknown)} (known: {', '.join(RULES_KEYS)})")
        for key in ("skip_weekdays", "skip_days_of_month"):
            if key in data and not isinstance(data[key], (list, tuple)):
                raise ConfigError(f"rules: {key} must be a list, got {data[key]!r}")
        return cls(**{key: data[key] for key in RULES_KEYS if key in data})



def _weekdays(values: Any) -> tuple[str, ...]:
    chosen = set()
    for value in values:
        name = value.strip().capitalize() if isinstance(value, str) else None
        if name not in WEEKDAYS:
            raise ConfigError(f"rules: skip_weekdays: {value!r} is not a weekday (Mon, Tue, ..., Sun)")
        chosen.add(name)
    return tuple(day for day in WEEKDAYS if day in chosen)


def _days_of_month(values: Any) -> tuple[int, ...]:
    chosen = set()
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 31:
            raise ConfigError(f"rules: skip_days_of_month: {value!r} is not a day of the month (1..31)")
        chosen.add(value)
    return tuple(sorted(chosen))


#: The rules of a report that names none: every traded decision counts.
NO_RULES = TradeRules()
