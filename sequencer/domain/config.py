"""The sequencer configuration (SPEC 2) and its identity, ``config_id``."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .errors import ConfigError, InvalidEvent
from .slot_time import normalize_slot

TARGET_MODES = ("base", "rolling_median", "median_ladder")


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """Base profit target, the step targets are floored to, the price tick, and
    the dollars one point of profit is worth (SPEC 8.1).

    ``point_value`` changes no state: it is left out of ``target_rules`` and of
    ``config_id``, so checkpoints written before it existed keep loading.
    """

    base: float
    increment: float
    tick: float
    point_value: float = 1.0

    def __post_init__(self) -> None:
        # Targets are prices: keep them floats so JSON and decisions never mix 10 and 10.0.
        for name in ("base", "increment", "tick", "point_value"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def target_rules(self) -> tuple[float, float, float]:
        """The fields the fold's targets depend on (and ``config_id`` hashes)."""
        return (self.base, self.increment, self.tick)


DEFAULT_INSTRUMENTS: Mapping[str, InstrumentSpec] = MappingProxyType(
    {
        # point values as the desk's earlier tool used them (SPEC 8.1)
        "ES": InstrumentSpec(10, 5, 0.25, point_value=50),
        "NQ": InstrumentSpec(50, 25, 0.25, point_value=10),
        "YM": InstrumentSpec(100, 50, 1, point_value=5),
        "CL": InstrumentSpec(0.5, 0.25, 0.01, point_value=1000),
        "GC": InstrumentSpec(5, 2.5, 0.1, point_value=100),
        "NG": InstrumentSpec(0.05, 0.025, 0.001, point_value=10000),
    }
)

DEFAULT_SESSIONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "S1": ("07:30", "08:00", "09:00"),
        "S2": ("09:30", "10:00", "10:30", "11:00"),
    }
)

#: The keys of SPEC 2's table, in the order the spec lists them.
RULE_KEYS = (
    "depth",
    "median_position",
    "promotion_days",
    "max_target_pct",
    "target_mode",
    "time_change",
    "no_trade_on_low_median",
    "start_slot",
)


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    """Everything the fold's rules depend on.

    ``config_id`` hashes the SPEC 2 keys; instruments and sessions join the
    hash only when they differ from the defaults, so the default config keeps
    the id every other tool computes from SPEC 2 alone.
    """

    depth: int = 13
    median_position: int = 7
    promotion_days: int = 2
    max_target_pct: float = 400
    target_mode: str = "rolling_median"
    time_change: bool = True
    no_trade_on_low_median: bool = True
    start_slot: str | None = None
    instruments: Mapping[str, InstrumentSpec] = field(default_factory=lambda: DEFAULT_INSTRUMENTS)
    sessions: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_SESSIONS)
    #: ``config_id``, computed once: every checkpoint read checks it, twice
    #: (a ``json.dumps`` and a sha256 each time, a quarter of ``state_from_dict``).
    _config_id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _require_int("depth", self.depth, minimum=1)
        _require_int("median_position", self.median_position, minimum=1)
        if self.median_position > self.depth:
            raise ConfigError(
                f"median_position {self.median_position} is beyond depth {self.depth}"
            )
        _require_int("promotion_days", self.promotion_days, minimum=0)
        if isinstance(self.max_target_pct, bool) or not isinstance(
            self.max_target_pct, (int, float)
        ) or not self.max_target_pct > 0:
            raise ConfigError(f"max_target_pct must be a positive number, got {self.max_target_pct!r}")
        if self.target_mode not in TARGET_MODES:
            raise ConfigError(
                f"target_mode must be one of {', '.join(TARGET_MODES)}, got {self.target_mode!r}"
            )
        for key in ("time_change", "no_trade_on_low_median"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{key} must be true or false, got {getattr(self, key)!r}")
        blob = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        object.__setattr__(self, "_config_id", hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12])
        if not self.instruments:
            raise ConfigError("at least one instrument is required")
        if not self.sessions or any(not slots for slots in self.sessions.values()):
            raise ConfigError("every session needs at least one slot")
        if self.start_slot is not None and not any(
            self.start_slot in slots for slots in self.sessions.values()
        ):
            raise ConfigError(f"start_slot {self.start_slot!r} is not a slot of any session")

    def first_slot(self, session: str) -> str:
        """The slot a stream of ``session`` trades on its first day."""
        slots = self.sessions[session]
        if self.start_slot is not None and self.start_slot in slots:
            return self.start_slot
        return slots[0]

    def canonical(self) -> dict[str, Any]:
        """The config as plain JSON data, the input of ``config_id``."""
        data: dict[str, Any] = {key: getattr(self, key) for key in RULE_KEYS}
        if _target_rules_of(self.instruments) != _target_rules_of(DEFAULT_INSTRUMENTS):
            data["instruments"] = {
                name: {"base": spec.base, "increment": spec.increment, "tick": spec.tick}
                for name, spec in self.instruments.items()
            }
        if {k: tuple(v) for k, v in self.sessions.items()} != dict(DEFAULT_SESSIONS):
            data["sessions"] = {name: list(slots) for name, slots in self.sessions.items()}
        return data

    @property
    def config_id(self) -> str:
        """sha256 of the canonical config as sorted compact JSON, 12 hex digits."""
        return self._config_id

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "SequencerConfig":
        """Build a config from parsed JSON or TOML; unknown keys are an error."""
        known = set(RULE_KEYS) | {"instruments", "sessions"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        kwargs: dict[str, Any] = {k: data[k] for k in RULE_KEYS if k in data}
        if "max_target_pct" in kwargs and isinstance(kwargs["max_target_pct"], float):
            if kwargs["max_target_pct"].is_integer():
                kwargs["max_target_pct"] = int(kwargs["max_target_pct"])
        if "instruments" in data:
            if not isinstance(data["instruments"], Mapping):
                raise ConfigError("instruments must be a table of instrument -> base, increment, tick")
            kwargs["instruments"] = MappingProxyType(
                {name: _instrument_spec(name, spec) for name, spec in data["instruments"].items()}
            )
        if "sessions" in data:
            sessions = data["sessions"]
            if not isinstance(sessions, Mapping):
                raise ConfigError("sessions must be a table of session -> list of slots")
            kwargs["sessions"] = MappingProxyType(
                {str(name): _session_slots(str(name), slots) for name, slots in sessions.items()}
            )
        return cls(**kwargs)


def _target_rules_of(instruments: Mapping[str, InstrumentSpec]) -> dict[str, tuple[float, float, float]]:
    return {name: spec.target_rules for name, spec in instruments.items()}


def _session_slots(name: str, slots: Any) -> tuple[str, ...]:
    """A session's slots from a config file: a list of distinct ``HH:MM`` times."""
    if not isinstance(slots, list):
        raise ConfigError(f"session {name}: expected a list of slot times, got {slots!r}")
    found: list[str] = []
    for raw in slots:
        try:
            slot = normalize_slot(raw)
        except InvalidEvent:
            raise ConfigError(f"session {name}: slot {raw!r} is not a time HH:MM") from None
        if slot in found:
            raise ConfigError(f"session {name}: slot {slot} is listed twice")
        found.append(slot)
    return tuple(found)


def _instrument_spec(name: str, spec: Any) -> InstrumentSpec:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"instrument {name}: expected base, increment and tick")
    try:
        values = [spec[k] for k in ("base", "increment", "tick")]
    except KeyError as missing:
        raise ConfigError(f"instrument {name}: missing {missing.args[0]}") from None
    unknown = sorted(set(spec) - {"base", "increment", "tick", "point_value"})
    if unknown:
        raise ConfigError(f"instrument {name}: unknown keys {', '.join(map(str, unknown))}")
    # An instrument of SPEC 1 keeps its SPEC 8.1 point value unless the file
    # names one; any other instrument counts a point as one dollar.
    default = DEFAULT_INSTRUMENTS.get(name)
    point_value = spec.get("point_value", default.point_value if default is not None else 1.0)
    for key, value in zip(("base", "increment", "tick", "point_value"), values + [point_value]):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ConfigError(f"instrument {name}: {key} must be a positive number, got {value!r}")
    return InstrumentSpec(*values, point_value=point_value)


def _require_int(key: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
