"""A frozen copy of the stream-state validation as it was before the typed state codecs
(main at 25a6701: ``domain.state.state_from_dict``, ``upgrade_legacy``, ``load_state_document``,
their field readers, and the parsing of ``codecs.decode_state`` and of
``CheckpointStore.load_file``).

The property tests in ``tests/unit/test_typed_state_codecs.py`` hold the project's
decoders equal to it on arbitrary documents: the same states accepted, the same
reason for each refusal, word for word. Do not edit it to make a test pass: it is
the reference the reasons must keep. (The name, date and slot helpers it calls are
copied below too, so a later change to them shows up as a difference.)
"""
# ruff: noqa
from __future__ import annotations

import datetime as _dt
import json
import math
import re
from types import MappingProxyType
from typing import Any, Mapping

from sequencer.domain.config import SequencerConfig
from sequencer.domain.errors import InvalidEvent, InvalidState, shown
from sequencer.domain.state import STATE_KEYS, SCHEMA_VERSION, StreamState

_OPTIONAL_KEYS = {"saved_at", "source_offsets"}

STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
_STREAM_PARTS = re.compile(r"([A-Za-z]+)([0-9]+)")
_SLOT_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::00)?")


def normalize_slot(value: Any) -> str:
    if isinstance(value, str):
        match = _SLOT_TIME.fullmatch(value.strip())
        if match and int(match.group(1)) < 24 and int(match.group(2)) < 60:
            return f"{int(match.group(1)):02d}:{match.group(2)}"
    raise InvalidEvent(f"malformed slot time {shown(value)}: expected HH:MM")


def parse_iso_date(value: Any, what: str = "date") -> str:
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
    match = _STREAM_PARTS.fullmatch(stream)
    if not match:
        raise InvalidEvent(
            f"stream {shown(stream)} is not instrument + session digit (e.g. ES1)"
        )
    return match.group(1), "S" + match.group(2)


def is_legacy_layout(doc: Mapping[str, Any]) -> bool:
    return "schema_version" not in doc


def decode_state(data: bytes, config: SequencerConfig) -> StreamState:
    """``codecs.decode_state`` as it was."""
    return state_from_dict(json.loads(data), config)


def load_checkpoint_text(text: str, config: SequencerConfig):
    """``CheckpointStore.load_file`` after reading the text, as it was: (state, warnings,
    saved_at, legacy), or ``ValueError`` (the JSON's) / ``InvalidState``."""
    doc = json.loads(text)
    state, warnings = load_state_document(doc, config)
    saved_at = doc.get("saved_at")
    return state, warnings, saved_at if isinstance(saved_at, str) else None, "schema_version" not in doc


def state_from_dict(doc: Any, config: SequencerConfig) -> StreamState:
    """Validate a current-layout document; ``InvalidState`` says what is wrong."""
    if not isinstance(doc, Mapping):
        raise InvalidState(f"expected a JSON object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InvalidState(f"schema_version {version!r} is not supported (expected {SCHEMA_VERSION})")
    missing = [k for k in STATE_KEYS if k not in doc and k not in _OPTIONAL_KEYS]
    if missing:
        raise InvalidState(f"missing keys: {', '.join(missing)}")
    unknown = sorted(set(doc) - set(STATE_KEYS))
    if unknown:
        raise InvalidState(f"unknown keys: {', '.join(unknown)}")
    stream, instrument, session = _identity(doc, config)
    if doc["config_id"] != config.config_id:
        raise InvalidState(
            f"config_id {doc['config_id']!r} belongs to another config (running {config.config_id})"
        )
    if "saved_at" in doc and not isinstance(doc["saved_at"], str):
        raise InvalidState(f"saved_at must be an ISO timestamp string, got {doc['saved_at']!r}")
    rolling = _window(doc, "rolling_median_window", config)
    ladder = _window(doc, "median_ladder_window", config)
    offsets = doc.get("source_offsets", {})
    if not isinstance(offsets, Mapping) or not all(
        isinstance(k, str) and _is_int(v) and v >= 0 for k, v in offsets.items()
    ):
        raise InvalidState("source_offsets must map 'topic:partition' to a non-negative offset")
    if not isinstance(doc["no_trade_next"], bool):
        raise InvalidState(f"no_trade_next must be true or false, got {doc['no_trade_next']!r}")
    return StreamState(
        stream=stream,
        instrument=instrument,
        session=session,
        config_id=config.config_id,
        last_processed_date=_last_date(doc),
        events_applied=_count(doc, "events_applied"),
        rolling_median_window=rolling,
        median_ladder_window=ladder if ladder != rolling else rolling,
        time_slot_histories=_histories(doc, session, config, drop_unknown=None),
        current_time=_current_time(doc, session, config),
        current_target=_target(doc, "current_target"),
        rolling_median_target=_target(doc, "rolling_median_target"),
        median_ladder_target=_target(doc, "median_ladder_target"),
        median_ladder_current_step=_count(doc, "median_ladder_current_step"),
        median_ladder_days_at_level=_count(doc, "median_ladder_days_at_level"),
        no_trade_next=doc["no_trade_next"],
        source_offsets=MappingProxyType(dict(offsets)),
    )


def upgrade_legacy(doc: Mapping[str, Any], config: SequencerConfig) -> tuple[StreamState, list[str]]:
    """Read the seed's older layout (SPEC 7); returns the state and warnings to log."""
    required = ("stream", "instrument", "rolling_median_window", "time_slot_histories",
                "current_target", "current_time", "last_processed_date")
    missing = [k for k in required if k not in doc]
    if missing:
        raise InvalidState(f"older layout without schema_version, missing keys: {', '.join(missing)}")
    stream, instrument, session = _identity(doc, config)
    base = config.instruments[instrument].base
    warnings: list[str] = []
    rolling = _window(doc, "rolling_median_window", config)
    ladder = _window(doc, "median_ladder_window", config) if "median_ladder_window" in doc else rolling
    histories = _histories(doc, session, config, drop_unknown=warnings)
    no_trade_next = False
    if len(rolling) >= config.depth and config.no_trade_on_low_median:
        no_trade_next = sorted(rolling)[config.median_position - 1] < base
    state = StreamState(
        stream=stream,
        instrument=instrument,
        session=session,
        config_id=config.config_id,
        last_processed_date=_last_date(doc),
        events_applied=0,
        rolling_median_window=rolling,
        median_ladder_window=ladder if ladder != rolling else rolling,
        time_slot_histories=histories,
        current_time=_current_time(doc, session, config),
        current_target=_target(doc, "current_target"),
        rolling_median_target=_target(doc, "rolling_median_target", default=base),
        median_ladder_target=_target(doc, "median_ladder_target", default=base),
        median_ladder_current_step=_count(doc, "median_ladder_current_step", default=0),
        median_ladder_days_at_level=_count(doc, "median_ladder_days_at_level", default=0),
        no_trade_next=no_trade_next,
    )
    return state, warnings


def load_state_document(doc: Any, config: SequencerConfig) -> tuple[StreamState, list[str]]:
    """Either layout -> state, with the upgrade's warnings (empty for the current layout)."""
    if isinstance(doc, Mapping) and is_legacy_layout(doc):
        return upgrade_legacy(doc, config)
    return state_from_dict(doc, config), []


# --- field readers: each raises InvalidState naming the field ---------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _identity(doc: Mapping[str, Any], config: SequencerConfig) -> tuple[str, str, str]:
    stream = doc.get("stream")
    if not isinstance(stream, str) or not STREAM_NAME.fullmatch(stream):
        raise InvalidState(f"stream {stream!r} is not a valid stream name")
    try:
        name_instrument, name_session = split_stream_name(stream)
    except InvalidEvent as error:
        raise InvalidState(error.reason) from None
    instrument = doc.get("instrument")
    session = doc.get("session", name_session)
    if instrument != name_instrument or session != name_session:
        raise InvalidState(
            f"instrument/session {instrument}/{session} disagree with stream {stream}"
        )
    if instrument not in config.instruments:
        raise InvalidState(f"unknown instrument {instrument!r}")
    if session not in config.sessions:
        raise InvalidState(f"unknown session {session!r}")
    return stream, instrument, session


def _window(doc: Mapping[str, Any], key: str, config: SequencerConfig) -> tuple[float, ...]:
    values = doc[key]
    if not isinstance(values, list):
        raise InvalidState(f"{key} must be a list of peaks")
    for i, value in enumerate(values):
        if not _is_number(value) or value < 0:
            raise InvalidState(f"{key}[{i}] must be a finite peak >= 0, got {value!r}")
    if len(values) > config.depth:
        raise InvalidState(f"{key} holds {len(values)} peaks, more than depth {config.depth}")
    return tuple(values)


def _histories(doc: Mapping[str, Any], session: str, config: SequencerConfig,
               drop_unknown: list[str] | None) -> Mapping[str, tuple[int, ...]]:
    raw = doc["time_slot_histories"]
    if not isinstance(raw, Mapping):
        raise InvalidState("time_slot_histories must map slot -> list of scores")
    session_slots = config.sessions[session]
    found: dict[str, tuple[int, ...]] = {}
    for raw_slot, scores in raw.items():
        try:
            slot = normalize_slot(raw_slot)
        except InvalidEvent:
            slot = str(raw_slot)
        if slot not in session_slots:
            if drop_unknown is None:
                raise InvalidState(f"time_slot_histories has slot {raw_slot!r} outside session {session}")
            drop_unknown.append(f"dropped history of slot {raw_slot!r}: not a slot of session {session}")
            continue
        if not isinstance(scores, list):
            raise InvalidState(f"time_slot_histories[{raw_slot!r}] must be a list of scores")
        checked = []
        for i, score in enumerate(scores):
            if not _is_number(score) or score not in (1, -2, 0):
                raise InvalidState(
                    f"time_slot_histories[{raw_slot!r}][{i}] must be a score 1, 0 or -2, got {score!r}"
                )
            checked.append(int(score))
        if len(checked) > config.depth:
            raise InvalidState(
                f"time_slot_histories[{raw_slot!r}] holds {len(checked)} scores, more than depth {config.depth}"
            )
        found[slot] = tuple(checked)
    if drop_unknown is None:
        absent = [s for s in session_slots if s not in found]
        if absent:
            raise InvalidState(f"time_slot_histories lacks slots {', '.join(absent)}")
    return MappingProxyType({s: found.get(s, ()) for s in session_slots})


def _current_time(doc: Mapping[str, Any], session: str, config: SequencerConfig) -> str:
    value = doc["current_time"]
    try:
        slot = normalize_slot(value)
    except InvalidEvent:
        raise InvalidState(f"current_time {value!r} is not a slot time") from None
    if slot not in config.sessions[session]:
        raise InvalidState(f"current_time {value!r} is not a slot of session {session}")
    return slot


def _last_date(doc: Mapping[str, Any]) -> str | None:
    value = doc["last_processed_date"]
    if value is None:
        return None
    try:
        return parse_iso_date(value, "last_processed_date")
    except InvalidEvent as error:
        raise InvalidState(error.reason) from None


def _target(doc: Mapping[str, Any], key: str, default: float | None = None) -> float:
    value = doc.get(key, default) if default is not None else doc[key]
    if value is None and default is not None:
        value = default
    if not _is_number(value) or value < 0:
        raise InvalidState(f"{key} must be a finite number >= 0, got {value!r}")
    return value


def _count(doc: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = doc.get(key, default) if default is not None else doc[key]
    if value is None and default is not None:
        value = default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not _is_int(value) or value < 0:
        raise InvalidState(f"{key} must be a non-negative integer, got {value!r}")
    return value
