"""Per-stream state (SPEC 4), its JSON codec and the upgrade of the seed's layout (SPEC 7).

The state is a frozen value: windows and histories are tuples capped at
``depth``, so a snapshot is the value itself and the fold never copies deeply.
"""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from .config import SequencerConfig
from .errors import InvalidEvent, InvalidState
from .events import SCORES, STREAM_NAME, parse_iso_date, split_stream_name
from .slot_time import normalize_slot

SCHEMA_VERSION = 1

#: The keys of a state document, in SPEC 4's order; ``saved_at`` only in checkpoints.
STATE_KEYS = (
    "schema_version",
    "stream",
    "instrument",
    "session",
    "config_id",
    "saved_at",
    "last_processed_date",
    "events_applied",
    "rolling_median_window",
    "median_ladder_window",
    "time_slot_histories",
    "current_time",
    "current_target",
    "rolling_median_target",
    "median_ladder_target",
    "median_ladder_current_step",
    "median_ladder_days_at_level",
    "no_trade_next",
    "source_offsets",
)
_OPTIONAL_KEYS = {"saved_at", "source_offsets"}

_EMPTY_OFFSETS: Mapping[str, int] = MappingProxyType({})


class StreamState(NamedTuple):
    """Everything the sequencer remembers about one stream.

    Immutable: the fold builds a new value per event and shares what did not
    change. A NamedTuple because the fold builds one per event and it costs a
    third of a frozen dataclass.
    """

    stream: str
    instrument: str
    session: str
    config_id: str
    last_processed_date: str | None
    events_applied: int
    rolling_median_window: tuple[float, ...]
    median_ladder_window: tuple[float, ...]
    time_slot_histories: Mapping[str, tuple[int, ...]]
    current_time: str
    current_target: float
    rolling_median_target: float
    median_ladder_target: float
    median_ladder_current_step: int
    median_ladder_days_at_level: int
    no_trade_next: bool
    source_offsets: Mapping[str, int] = _EMPTY_OFFSETS

    def with_source_offsets(self, offsets: Mapping[str, int]) -> "StreamState":
        return self._replace(source_offsets=MappingProxyType(dict(offsets)))


def partition_key(topic: str, partition: int) -> str:
    """The key of a ``source_offsets`` entry (SPEC 4): ``topic:partition``."""
    return f"{topic}:{partition}"


def split_partition_key(key: str) -> tuple[str, int]:
    """``(topic, partition)`` of a ``source_offsets`` key; ``ValueError`` if it is not one."""
    topic, _, partition = key.rpartition(":")
    return topic, int(partition)


def offsets_in_topic(source_offsets: Mapping[str, int], topic: str) -> dict[int, int]:
    """Partition -> next offset, for the entries of ``topic``; keys of other forms are ignored."""
    found = {}
    for key, offset in source_offsets.items():
        try:
            key_topic, partition = split_partition_key(key)
        except ValueError:
            continue
        if key_topic == topic:
            found[partition] = offset
    return found


def home_partition(source_offsets: Mapping[str, int], topic: str) -> int | None:
    """The partition of ``topic`` a stream's events come from, or None before its first.

    SPEC 3 keys every event by its stream name, so one stream's events are all
    in one partition (whatever the producer's partitioner: murmur2, CRC32, FNV
    give one partition per key). That is the first partition of ``topic`` its
    ``source_offsets`` name: the processor folds no record of another one, so
    a state folded since then names only this one (one written before may name
    more; the first is still the one the worker files it under)."""
    for partition in offsets_in_topic(source_offsets, topic):
        return partition
    return None


def initial_state(stream: str, config: SequencerConfig) -> StreamState:
    """The state of a stream that has seen no event (SPEC 4)."""
    instrument, session = split_stream_name(stream)
    if instrument not in config.instruments:
        raise InvalidEvent(f"unknown instrument {instrument!r}")
    if session not in config.sessions:
        raise InvalidEvent(f"unknown session {session!r}")
    base = config.instruments[instrument].base
    return StreamState(
        stream=stream,
        instrument=instrument,
        session=session,
        config_id=config.config_id,
        last_processed_date=None,
        events_applied=0,
        rolling_median_window=(),
        median_ladder_window=(),
        time_slot_histories=MappingProxyType({s: () for s in config.sessions[session]}),
        current_time=config.first_slot(session),
        current_target=base,
        rolling_median_target=base,
        median_ladder_target=base,
        median_ladder_current_step=0,
        median_ladder_days_at_level=0,
        no_trade_next=False,
    )


def state_to_dict(state: StreamState, saved_at: str | None = None) -> dict[str, Any]:
    """The SPEC 4 document; ``saved_at`` is added for checkpoints."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "stream": state.stream,
        "instrument": state.instrument,
        "session": state.session,
        "config_id": state.config_id,
    }
    if saved_at is not None:
        doc["saved_at"] = saved_at
    doc.update(
        last_processed_date=state.last_processed_date,
        events_applied=state.events_applied,
        rolling_median_window=list(state.rolling_median_window),
        median_ladder_window=list(state.median_ladder_window),
        time_slot_histories={s: list(h) for s, h in state.time_slot_histories.items()},
        current_time=state.current_time,
        current_target=state.current_target,
        rolling_median_target=state.rolling_median_target,
        median_ladder_target=state.median_ladder_target,
        median_ladder_current_step=state.median_ladder_current_step,
        median_ladder_days_at_level=state.median_ladder_days_at_level,
        no_trade_next=state.no_trade_next,
        source_offsets=dict(state.source_offsets),
    )
    return doc


def is_legacy_layout(doc: Mapping[str, Any]) -> bool:
    """The seed's state manager wrote no ``schema_version``."""
    return "schema_version" not in doc


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
    return state_of_document(doc, config)


def state_of_document(doc: Mapping[str, Any], config: SequencerConfig) -> StreamState:
    """The SPEC 4 rules on a document of the current layout whose keys are checked:
    identity and config_id, windows and histories within depth, slots of the
    session, dates, finite non-negative numbers. ``InvalidState`` names the first fault.

    ``state_from_dict`` calls it after checking the envelope (a mapping, schema_version
    1, exactly the SPEC 4 keys); the typed decoder (``app.codecs.decode_state``) calls
    it on the fields its msgspec schema has typed, so each rule is written and applied
    once. Each reader below checks its value's type too, in the words of its message;
    on a typed value that check passes at C speed (``_all_peaks``, ``_all_scores``).
    """
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
    if not _is_mapping(offsets) or not all(
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


def _is_mapping(value: Any) -> bool:
    # A decoded document holds dicts: skip the ABC's slower isinstance for them.
    return type(value) is dict or isinstance(value, Mapping)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond any float (a JSON literal of 309+ digits)
        return False


_NUMBER_TYPES = frozenset((int, float))
_SCORE_TYPES = frozenset((int,))
_SCORES = frozenset(SCORES.values())  # the scores the fold gives: 1, -2, 0


def _all_peaks(values: list[Any]) -> bool:
    """Every value an int or a float, finite and >= 0, checked in C (no Python call per value).

    False also when it cannot tell quickly (a sum that overflows): the caller then
    checks value by value, which finds the fault and says it, or finds none."""
    if not values:
        return True
    if not _NUMBER_TYPES.issuperset(map(type, values)):
        return False
    try:
        return min(values) >= 0 and math.isfinite(sum(values))  # NaN or inf makes the sum so
    except OverflowError:
        return False


def _all_scores(scores: list[Any]) -> bool:
    """Every score an int (not a bool) and one of 1, 0, -2, checked in C."""
    return _SCORE_TYPES.issuperset(map(type, scores)) and _SCORES.issuperset(scores)


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
    if not _all_peaks(values):
        for i, value in enumerate(values):
            if not _is_number(value) or value < 0:
                raise InvalidState(f"{key}[{i}] must be a finite peak >= 0, got {value!r}")
    if len(values) > config.depth:
        raise InvalidState(f"{key} holds {len(values)} peaks, more than depth {config.depth}")
    return tuple(values)


def _histories(doc: Mapping[str, Any], session: str, config: SequencerConfig,
               drop_unknown: list[str] | None) -> Mapping[str, tuple[int, ...]]:
    raw = doc["time_slot_histories"]
    if not _is_mapping(raw):
        raise InvalidState("time_slot_histories must map slot -> list of scores")
    session_slots = config.sessions[session]
    depth = config.depth
    if tuple(raw) == session_slots and all(type(scores) is list and len(scores) <= depth and _all_scores(scores)
                                           for scores in raw.values()):
        # As state_to_dict writes them: every slot of the session, in order, spelled HH:MM.
        return MappingProxyType({slot: tuple(scores) for slot, scores in raw.items()})
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
        if _all_scores(scores):
            checked = scores
        else:
            checked = []
            for i, score in enumerate(scores):
                if not _is_number(score) or score not in _SCORES:
                    raise InvalidState(
                        f"time_slot_histories[{raw_slot!r}][{i}] must be a score 1, 0 or -2, got {score!r}"
                    )
                checked.append(int(score))  # 1.0 is the score 1
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
