"""A frozen copy of the day-event validation as it was before the typed codecs
(main at 0b94c4e: ``codecs.decode_payload`` + ``domain.events.parse_day_event``).

The property tests in ``tests/unit/test_typed_codecs.py`` hold the project's decoders
equal to it on arbitrary input: the same events accepted, the same reason for
each refusal, word for word. Do not edit it to make a test pass: it is the
reference the reasons must keep.
"""
# ruff: noqa
from __future__ import annotations

import datetime as _dt
import math
import re
import reprlib
from dataclasses import dataclass
from types import MappingProxyType
from collections.abc import Mapping
from typing import Any, NamedTuple

from sequencer.domain.config import SequencerConfig
from sequencer.domain.errors import InvalidEvent

#: Every name check is a whole-string match (``fullmatch``): with ``match``,
#: ``$`` also matches before a final newline and "ES1\n" would pass.
STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_STREAM_PARTS = re.compile(r"([A-Za-z]+)([0-9]+)")
_SLOT_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::00)?")

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

# Values quoted in error messages are cut short and shallow: an error about a
# 60 KB string or a list nested 1,000 deep must stay one readable line (and a
# plain repr of the latter raises RecursionError).
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxlevel = 2
_SHORT_REPR.maxstring = 40
_SHORT_REPR.maxother = 40
_SHORT_REPR.maxlist = _SHORT_REPR.maxdict = _SHORT_REPR.maxtuple = 4


SHOWN_MAX_CHARS = 80


def shown(value: Any) -> str:
    """A short repr of an untrusted value (at most ``SHOWN_MAX_CHARS``), for error messages."""
    text = _SHORT_REPR.repr(value)
    return text if len(text) <= SHOWN_MAX_CHARS else text[:SHOWN_MAX_CHARS - 3] + "..."


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


@dataclass(frozen=True, slots=True)
class DayEvent:
    """One stream, one date, the outcome of each slot that has data."""

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


_SLOT_NAMES: dict[str, str] = {}  # raw spelling -> slot; a few dozen entries at most


def normalize_slot(value: Any) -> str:
    """``7:30`` and ``07:30:00`` name the slot ``07:30``."""
    if type(value) is str:
        slot = _SLOT_NAMES.get(value)
        if slot is not None:
            return slot
    if isinstance(value, str):
        match = _SLOT_TIME.fullmatch(value.strip())
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            slot = f"{int(match.group(1)):02d}:{match.group(2)}"
            if len(_SLOT_NAMES) < 1024:
                _SLOT_NAMES[value] = slot
            return slot
    raise InvalidEvent(f"malformed slot time {shown(value)}: expected HH:MM")


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


# --- codecs.py: decode_payload and its helpers, as they were ------------------------------

import hashlib
import json
from itertools import accumulate

import msgpack

DEFAULT_MAX_EVENT_BYTES = 64 * 1024
MAX_NESTING = 16
_JSON_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
def json_nesting(data: bytes) -> int:
    """How deep the brackets of a JSON document nest (brackets inside strings do not count)."""
    brackets = _JSON_STRING.sub(b'""', data).translate(None, _NOT_BRACKETS)
    return max(accumulate(_BRACKET_STEP[b] for b in brackets), default=0)


def loads_json(data: bytes | str) -> Any:
    """``json.loads`` of untrusted text: nesting limited before parsing, every failure ``InvalidEvent``."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    # Counting brackets is C-fast; only a document with many is measured exactly.
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and json_nesting(raw) > MAX_NESTING:
        raise InvalidEvent(f"malformed JSON: nested deeper than {MAX_NESTING} levels")
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise InvalidEvent(f"malformed JSON: {str(error)[:200]}") from None


def decode_payload(data: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Any:
    """msgpack or JSON bytes -> Python data. A JSON document starts with ``{``.

    Every way untrusted bytes can fail raises ``InvalidEvent``: the size limit
    and the JSON nesting limit are checked before parsing; msgpack's own
    parser stops at 1,024 levels (StackError) without recursing in Python.
    """
    if data is None:
        raise InvalidEvent("empty message (no value)")
    if len(data) > max_bytes:
        raise InvalidEvent(f"event of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if not data:
        raise InvalidEvent("empty message (zero bytes)")
    if data.lstrip()[:1] == b"{":
        return loads_json(data)
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except msgpack.StackError:
        raise InvalidEvent("malformed msgpack: nested too deep") from None
    except Exception as error:  # msgpack raises a variety of types on hostile input
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise InvalidEvent(f"malformed msgpack ({detail[:200]})") from None


def decode_event(data: bytes, config: SequencerConfig, max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 latest_date: str | None = None) -> DayEvent:
    return parse_day_event(decode_payload(data, max_bytes), config, latest_date)
