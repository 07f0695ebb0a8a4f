"""The day event (SPEC 3): one stream's slot outcomes for one trading date.

``parse_day_event`` is the only way in from untrusted data: it validates every
field and raises ``InvalidEvent`` with a specific reason. The fold trusts a
``DayEvent`` completely.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any, NamedTuple

from .config import SequencerConfig
from .errors import InvalidEvent, shown
from .slot_time import normalize_slot

#: Every name check is a whole-string match (``fullmatch``): with ``match``,
#: ``$`` also matches before a final newline and "ES1\n" would pass.
STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_STREAM_PARTS = re.compile(r"([A-Za-z]+)([0-9]+)")

#: Numbers of a slot outcome beyond this magnitude are rejected. No price,
#: range or profit comes near it, and it keeps the fold's arithmetic finite
#: (a peak of 1e308 divided by an increment of 0.025 is inf, and flooring inf
#: raises; an integer of 30 digits does not fit msgpack's 64 bits).
NUMBER_LIMIT = 1e12

#: A direction is a short word ("Long", "Short"); longer text is not one.
DIRECTION_MAX_CHARS = 32

#: A day event may be dated at most this many days after today (UTC): one
#: day of grace for a desk whose trading day starts before midnight UTC.
FUTURE_GRACE_DAYS = 1

def latest_event_date(today: _dt.date) -> str:
    """The latest date a day event may carry when ``today`` is the UTC date (SPEC 3)."""
    return (today + _dt.timedelta(days=FUTURE_GRACE_DAYS)).isoformat()


def check_not_future(date: str, latest_date: str | None) -> str:
    """``date`` (ISO) unless it is after ``latest_date``; ``None`` checks nothing."""
    if latest_date is not None and date > latest_date:
        raise InvalidEvent(f"date {date} is in the future: the latest accepted is {latest_date} "
                           "(today in UTC plus one day of grace)")
    return date

SCORES: Mapping[str, int] = MappingProxyType(
    {"Win": 1, "Loss": -2, "BE": 0, "NoTrade": 0, "TIME": 0}
)

_RESULT_SPELLINGS = {
    "WIN": "Win",
    "LOSS": "Loss",
    "BE": "BE",
    "BREAK_EVEN": "BE",
    "BREAKEVEN": "BE",
    "NOTRADE": "NoTrade",
    "NO_TRADE": "NoTrade",
    "NO TRADE": "NoTrade",
    "TIME": "TIME",
}


class SlotOutcome(NamedTuple):
    """What one time slot produced on one day; only ``result`` is required.

    A NamedTuple rather than a frozen dataclass: equally immutable and typed,
    and about three times cheaper to build, which the replay of 400k rows feels.
    """

    result: str
    peak: float | None = None
    target: float | None = None
    direction: str | None = None
    range: float | None = None
    profit: float | None = None

    @property
    def score(self) -> int:
        return SCORES[self.result]


class DayEvent(NamedTuple):
    """One stream, one date, the outcome of each slot that has data.

    A NamedTuple, as immutable as a frozen dataclass: every record the worker
    reads and every day a replay folds builds one, and a frozen dataclass's
    ``__init__`` (a guarded ``setattr`` per field) cost five times as much."""

    stream: str
    instrument: str
    session: str
    date: str  # ISO YYYY-MM-DD: compares correctly as a string and is cheap
    slots: Mapping[str, SlotOutcome]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "instrument": self.instrument,
            "session": self.session,
            "date": self.date,
            "slots": {
                slot: {k: v for k, v in _outcome_fields(o).items() if v is not None}
                for slot, o in self.slots.items()
            },
        }


def _outcome_fields(outcome: SlotOutcome) -> dict[str, Any]:
    return {
        "result": outcome.result,
        "peak": outcome.peak,
        "target": outcome.target,
        "direction": outcome.direction,
        "range": outcome.range,
        "profit": outcome.profit,
    }


def canonical_result(value: Any) -> str:
    """Map an accepted spelling of a result to its canonical name."""
    if type(value) is str and value in SCORES:  # already canonical: the usual case
        return value
    if isinstance(value, str):
        name = _RESULT_SPELLINGS.get(value.strip().upper())
        if name is not None:
            return name
    raise InvalidEvent(f"bad result {shown(value)}: expected Win, Loss, BE, NoTrade or TIME")


def parse_iso_date(value: Any, what: str = "date") -> str:
    """Accept ``YYYY-MM-DD`` or an ISO timestamp (its date part counts)."""
    if isinstance(value, _dt.datetime):
        return value.date().isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"missing or malformed {what}: {shown(value)}")
    text = value.strip()
    try:
        if len(text) == 10:
            return _dt.date.fromisoformat(text).isoformat()
        return _dt.datetime.fromisoformat(text).date().isoformat()
    except ValueError:
        raise InvalidEvent(f"malformed {what} {shown(value)}: expected an ISO date YYYY-MM-DD") from None


def split_stream_name(stream: str) -> tuple[str, str]:
    """``ES1`` -> (``ES``, ``S1``): instrument letters, then the session digit(s)."""
    match = _STREAM_PARTS.fullmatch(stream)
    if not match:
        raise InvalidEvent(
            f"stream {shown(stream)} is not instrument + session digit (e.g. ES1)"
        )
    return match.group(1), "S" + match.group(2)


def is_stream_name(value: Any) -> bool:
    """True when ``value`` is a valid stream name as a whole (it becomes a file name)."""
    return isinstance(value, str) and STREAM_NAME.fullmatch(value) is not None


def validate_stream_name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"missing or malformed stream: {shown(value)}")
    if not is_stream_name(value):
        raise InvalidEvent(
            f"stream name {shown(value)} must match {STREAM_NAME.pattern} as a whole "
            "(no trailing newline)"
        )
    return value


def validate_direction(value: Any, slot: str) -> str | None:
    """A direction is absent or a short printable word (it is written to CSV and msgpack)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"slot {slot}: direction must be a string, got {shown(value)}")
    if len(value) > DIRECTION_MAX_CHARS or not value.isprintable():
        raise InvalidEvent(f"slot {slot}: direction {shown(value)} is not a word of at most "
                           f"{DIRECTION_MAX_CHARS} printable characters")
    return value


def _number(value: Any, what: str, *, non_negative: bool = False) -> float | None:
    kind = type(value)
    if kind is float or kind is int:  # the common case; the chain is False for NaN and inf
        if (0 <= value <= NUMBER_LIMIT) if non_negative else (-NUMBER_LIMIT <= value <= NUMBER_LIMIT):
            return value
    if value is None:
        return None
    return check_number(value, what, non_negative)


def check_number(value: Any, what: str, non_negative: bool = False) -> float | int:
    """``value`` if it is a finite number within ``NUMBER_LIMIT`` (and >= 0 if asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidEvent(f"{what} must be a number, got {type(value).__name__} {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidEvent(f"{what} must be finite, got {value!r}")
    if non_negative and value < 0:
        raise InvalidEvent(f"{what} must be >= 0, got {shown(value)}")
    if not -NUMBER_LIMIT <= value <= NUMBER_LIMIT:
        raise InvalidEvent(f"{what} {shown(value)} is beyond the limit of +-{NUMBER_LIMIT:g}")
    return value


def cell_number(value: Any, what: str, non_negative: bool = False) -> float | None:
    """A number of a file cell: text is parsed, the value checked (``check_number``), a float returned."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidEvent(f"{what} {shown(value)} is not a number") from None
    return float(check_number(value, what, non_negative))


def parse_slot_outcome(slot: str, data: Any) -> SlotOutcome:
    if type(data) is not dict and not isinstance(data, Mapping):
        raise InvalidEvent(f"slot {slot}: outcome must be a map, got {type(data).__name__}")
    if "result" not in data or data["result"] is None:
        raise InvalidEvent(f"slot {slot}: missing result")
    try:
        result = canonical_result(data["result"])
    except InvalidEvent as error:
        raise InvalidEvent(f"slot {slot}: {error.reason}") from None
    direction = validate_direction(data.get("direction"), slot)
    return SlotOutcome(
        result=result,
        peak=_number(data.get("peak"), f"slot {slot}: peak", non_negative=True),
        target=_number(data.get("target"), f"slot {slot}: target"),
        direction=direction,
        range=_number(data.get("range"), f"slot {slot}: range", non_negative=True),
        profit=_number(data.get("profit"), f"slot {slot}: profit"),
    )


def parse_day_event(data: Any, config: SequencerConfig, latest_date: str | None = None) -> DayEvent:
    """Validate untrusted event data (a decoded msgpack/JSON map) into a ``DayEvent``.

    ``instrument`` and ``session`` may be left out: the stream name implies
    them. When present they must agree with it. ``latest_date`` (ISO, from
    ``latest_event_date``; the caller reads the clock) rejects later dates as
    in the future; ``None`` (events already accepted once) checks nothing.
    """
    if type(data) is not dict and not isinstance(data, Mapping):
        raise InvalidEvent(f"event must be a map, got {type(data).__name__}")
    stream = validate_stream_name(data.get("stream"))
    name_instrument, name_session = split_stream_name(stream)
    instrument = data.get("instrument", name_instrument)
    session = data.get("session", name_session)
    if not isinstance(instrument, str):
        raise InvalidEvent(f"instrument must be a string, got {shown(instrument)}")
    if not isinstance(session, str):
        raise InvalidEvent(f"session must be a string, got {shown(session)}")
    if instrument not in config.instruments:
        raise InvalidEvent(f"unknown instrument {shown(instrument)}")
    if session not in config.sessions:
        raise InvalidEvent(f"unknown session {shown(session)}")
    if (instrument, session) != (name_instrument, name_session):
        raise InvalidEvent(
            f"instrument/session {instrument}/{session} disagree with stream name {stream}"
        )
    date = check_not_future(parse_iso_date(data.get("date")), latest_date)
    raw_slots = data.get("slots")
    if type(raw_slots) is not dict and not isinstance(raw_slots, Mapping):
        raise InvalidEvent(f"slots must be a map of slot time -> outcome, got {type(raw_slots).__name__}")
    session_slots = config.sessions[session]
    slots: dict[str, SlotOutcome] = {}
    for raw_slot, outcome in raw_slots.items():
        slot = normalize_slot(raw_slot)
        if slot not in session_slots:
            raise InvalidEvent(f"unknown slot {slot} for session {session}")
        if slot in slots:
            raise InvalidEvent(f"slot {slot} appears twice")
        slots[slot] = parse_slot_outcome(slot, outcome)
    ordered = {s: slots[s] for s in session_slots if s in slots}
    return DayEvent(stream, instrument, session, date, MappingProxyType(ordered))


#: Every accepted spelling of a result as it is usually written (as given,
#: upper, lower, capitalised) -> its name: one dict lookup for the common case.
#: Any other string goes through ``canonical_result`` (stripped, any case).
RESULT_NAMES: Mapping[str, str] = MappingProxyType({
    spelling: name
    for upper, name in _RESULT_SPELLINGS.items()
    for spelling in {upper, upper.lower(), upper.capitalize(), name}
})


class EventRules:
    """SPEC 3's rules that a schema cannot say, for fields that already have their types.

    A typed decoder (``codecs``) checks the types (strings, numbers, maps) and
    hands the fields over; the long-format file reader hands over its cells.
    Both then ask the same checks as ``parse_day_event``, in its order and with
    its words: the name pattern and its parts, known instrument, session and
    slot, the date, finite numbers in range, the result's spellings. The
    checks of a (stream, instrument, session) and of a date are remembered,
    since a long input repeats the same few of them.
    """

    def __init__(self, config: SequencerConfig) -> None:
        self.config = config
        self._identities: dict[tuple[Any, Any, Any], tuple[str, str, str]] = {}
        self._dates: dict[str, str] = {}
        self._directions: set[str] = set()  # directions already found valid ("Long", "Short")
        self._session_slots: dict[str, dict[Any, str]] = {}  # session -> raw slot -> slot, all valid
        self._slot_orders: dict[tuple[str, ...], bool] = {}  # (session, *slots) -> in session order

    def identity(self, stream: Any, instrument: Any, session: Any) -> tuple[str, str, str]:
        """(stream, instrument, session) of a valid stream; an instrument or session of None
        is left out (the stream name implies it). Raises ``InvalidEvent``."""
        key = (stream, instrument, session)
        try:
            cached = self._identities.get(key)
        except TypeError:  # unhashable (a JSON list or map): checked below, never remembered
            key, cached = None, None
        if cached is not None:
            return cached
        name = validate_stream_name(stream)
        name_instrument, name_session = split_stream_name(name)
        instrument = name_instrument if instrument is None else instrument
        session = name_session if session is None else session
        # A JSON list or map here would make the lookups below raise TypeError.
        if not isinstance(instrument, str):
            raise InvalidEvent(f"instrument must be a string, got {shown(instrument)}")
        if not isinstance(session, str):
            raise InvalidEvent(f"session must be a string, got {shown(session)}")
        if instrument not in self.config.instruments:
            raise InvalidEvent(f"unknown instrument {shown(instrument)}")
        if session not in self.config.sessions:
            raise InvalidEvent(f"unknown session {shown(session)}")
        if (instrument, session) != (name_instrument, name_session):
            raise InvalidEvent(f"instrument/session {instrument}/{session} disagree with stream name {name}")
        found = (name, instrument, session)
        if key is not None and len(self._identities) < 100_000:
            self._identities[key] = found
        return found

    def date(self, value: Any, latest_date: str | None) -> str:
        """The ISO date of ``value`` (``parse_iso_date``), not after ``latest_date``."""
        try:
            date = self._dates.get(value)
        except TypeError:  # unhashable: parse_iso_date says why it is no date
            date = None
        if date is None:
            date = parse_iso_date(value)
            if len(self._dates) < 100_000:
                self._dates[value] = date
        return check_not_future(date, latest_date)

    def slot(self, value: Any, session: str) -> str:
        """The slot ``value`` names (``normalize_slot``), one of ``session``'s."""
        slot = normalize_slot(value)
        if slot not in self.config.sessions[session]:
            raise InvalidEvent(f"unknown slot {slot} for session {session}")
        return slot

    def outcome(self, slot: str, result: str, peak: float | None, target: float | None,
                direction: str | None, range_: float | None, profit: float | None) -> SlotOutcome:
        """A slot outcome of typed fields (``result`` a string, the numbers int, float or
        None, ``direction`` a string or None), checked as ``parse_slot_outcome`` checks them."""
        name = RESULT_NAMES.get(result)
        if name is None:
            try:
                name = canonical_result(result)
            except InvalidEvent as error:
                raise InvalidEvent(f"slot {slot}: {error.reason}") from None
        if direction is not None and direction not in self._directions:
            validate_direction(direction, slot)
            if len(self._directions) < 1024:
                self._directions.add(direction)
        limit = NUMBER_LIMIT  # each chained comparison is also False for NaN and infinities
        if peak is not None and not 0 <= peak <= limit:
            check_number(peak, f"slot {slot}: peak", True)
        if target is not None and not -limit <= target <= limit:
            check_number(target, f"slot {slot}: target")
        if range_ is not None and not 0 <= range_ <= limit:
            check_number(range_, f"slot {slot}: range", True)
        if profit is not None and not -limit <= profit <= limit:
            check_number(profit, f"slot {slot}: profit")
        return SlotOutcome(name, peak, target, direction, range_, profit)

    def cells_outcome(self, slot: str, result: Any, peak: Any, target: Any, direction: Any,
                      range_: Any, profit: Any) -> SlotOutcome:
        """A slot outcome from the cells of a long-format row (CSV text, or the values of
        a Parquet or JSON-lines row): numbers may be written as text and become floats,
        an empty cell is None. Checked in the order result, peak, target, direction,
        range, profit."""
        if result is None:
            raise InvalidEvent(f"slot {slot}: missing result")
        return SlotOutcome(
            canonical_result(result),
            cell_number(peak, f"slot {slot}: peak", True),
            cell_number(target, f"slot {slot}: target"),
            validate_direction(None if direction is None else str(direction), slot),
            cell_number(range_, f"slot {slot}: range", True),
            cell_number(profit, f"slot {slot}: profit"),
        )

    def day_event(self, stream: str, instrument: str | None, session: str | None, date: str,
                  slots: Mapping[str, Any], latest_date: str | None) -> DayEvent:
        """A day event of typed fields; each value of ``slots`` has the attributes of a
        ``SlotOutcome`` (result, peak, target, direction, range, profit), typed as
        ``outcome`` says. ``instrument``/``session`` None: left out. Checks in
        ``parse_day_event``'s order, so a record with several faults gets its reason.

        The loop is the worker's per-event cost: an outcome whose every field
        passes a plain comparison is built here; any other goes through
        ``outcome``, which says what is wrong."""
        stream, instrument, session = self.identity(stream, instrument, session)
        day = self._dates.get(date)
        if day is None or (latest_date is not None and day > latest_date):
            day = self.date(date, latest_date)
        slot_names = self._session_slots.get(session)
        if slot_names is None:
            slot_names = self._session_slots[session] = {}
        names, directions, limit = RESULT_NAMES, self._directions, NUMBER_LIMIT
        found: dict[str, SlotOutcome] = {}
        for raw_slot, o in slots.items():
            slot = slot_names.get(raw_slot)
            if slot is None:
                slot = self.slot(raw_slot, session)
                if len(slot_names) < 1024:
                    slot_names[raw_slot] = slot
            if slot in found:
                raise InvalidEvent(f"slot {slot} appears twice")
            result, peak, target, direction, range_, profit = (
                names.get(o.result), o.peak, o.target, o.direction, o.range, o.profit)
            # Each chained comparison is False for NaN and infinities too.
            if (result is None or (direction is not None and direction not in directions)
                    or (peak is not None and not 0 <= peak <= limit)
                    or (target is not None and not -limit <= target <= limit)
                    or (range_ is not None and not 0 <= range_ <= limit)
                    or (profit is not None and not -limit <= profit <= limit)):
                found[slot] = self.outcome(slot, o.result, peak, target, direction, range_, profit)
            else:
                found[slot] = _new_tuple(SlotOutcome, (result, peak, target, direction, range_, profit))
        if len(found) > 1:
            # Slots in session order. Records list them in that order nearly
            # always; whether a key order is one is remembered per session.
            keys = (session, *found)
            in_order = self._slot_orders.get(keys)
            if in_order is None:
                in_order = list(found) == [s for s in self.config.sessions[session] if s in found]
                if len(self._slot_orders) < 1024:
                    self._slot_orders[keys] = in_order
            if not in_order:
                found = {s: found[s] for s in self.config.sessions[session] if s in found}
        return _new_tuple(DayEvent, (stream, instrument, session, day, MappingProxyType(found)))


#: Builds a SlotOutcome or a DayEvent from a tuple of its fields without the
#: generated keyword ``__new__`` (a Python-level call); only for fields already checked.
_new_tuple = tuple.__new__
