"""Wire codecs: day events and decisions as msgpack (JSON accepted on input), stream
states as the worker's table values (SPEC 4 JSON), dead letters.

One codec per record type. The worker's two tables hold a state (``encode_state``)
and a day event (``encode_event``: the last-events table's value is the event record). Decoding untrusted bytes raises ``InvalidEvent``
with a specific reason, so the caller can dead-letter the original bytes.

Day events are decoded by msgspec into typed structs (``_EventFields``), in C:
the schema checks every type at once, and the domain's ``EventRules`` then
applies what a schema cannot say (SPEC 3's name pattern, known names, dates,
finite numbers, result spellings). A record the schema refuses (a wrong type,
a missing field, an extra key, bytes that are not UTF-8, broken msgpack or
JSON) is decoded again by the generic path, ``decode_payload`` and
``parse_day_event``, which finds its first fault and says it in the words it
always has; ``tests/unit/test_typed_codecs.py`` holds the two paths equal.

Decisions, dead letters and stream states are typed the same way (``_DecisionFields``,
``_DeadLetterFields``, ``_StateFields``): msgspec writes decisions and dead letters
(the bytes ``msgpack`` wrote before, key order included) and reads all three; what
its schema refuses takes the generic path, which says why as it always did
(``tests/unit/test_typed_record_codecs.py``). States are still *written* by
``json.dumps``: msgspec spells some floats differently (``1e-05`` as ``1e-5``), and
the table value and the checkpoint file keep their bytes.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from itertools import accumulate
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import msgpack
import msgspec

from sequencer.app.distinct_keys import RepeatedKey, distinct_pairs

from sequencer.domain import (
    DECISION_FIELDS,
    DayEvent,
    Decision,
    InvalidEvent,
    InvalidState,
    SequencerConfig,
    SequencerError,
    StreamState,
    parse_day_event,
    state_from_dict,
    state_to_dict,
)
from sequencer.domain.events import EventRules
from sequencer.domain.state import state_of_document

if TYPE_CHECKING:
    from sequencer.app.records import DeadLetter

DEFAULT_MAX_EVENT_BYTES = 64 * 1024

#: Deepest nesting of maps and lists an event may have. A day event needs 3
#: (event, slots, outcome). ``json.loads`` recurses per level and raises
#: RecursionError near 1,000, so the depth is checked before parsing.
MAX_NESTING = 16

#: Dead letters carry at most this many bytes of the original value (and of
#: the key), so a letter always fits a broker's message limit (1 MB by default).
DEFAULT_DEAD_LETTER_VALUE_BYTES = 16 * 1024
DEAD_LETTER_KEY_BYTES = 1024

_JSON_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_nesting(data: bytes) -> int:
    """How deep the brackets of a JSON document nest (brackets inside strings do not count)."""
    brackets = _JSON_STRING.sub(b'""', data).translate(None, _NOT_BRACKETS)
    return max(accumulate(_BRACKET_STEP[b] for b in brackets), default=0)


def loads_json(data: bytes | str, *, distinct_keys: bool = False) -> Any:
    """``json.loads`` of untrusted text: nesting limited before parsing, every failure ``InvalidEvent``;
    with ``distinct_keys``, an object that gives a key twice too."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    # Counting brackets is C-fast; only a document with many is measured exactly.
    if raw.count(b"[") + raw.count(b"{") > MAX_NESTING and json_nesting(raw) > MAX_NESTING:
        raise InvalidEvent(f"malformed JSON: nested deeper than {MAX_NESTING} levels")
    try:
        return json.loads(data, object_pairs_hook=distinct_pairs if distinct_keys else None)
    except RepeatedKey as repeated:
        raise InvalidEvent(f"{repeated} in one object of the event") from None
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
    if data.startswith(codecs.BOM_UTF8) and data[3:].lstrip()[:1] == b"{":
        # .NET's and PowerShell's UTF-8 writers start JSON with a byte order mark;
        # it is not content (json.loads of bytes skips it too). msgpack never starts
        # so: 0xef is a negative fixint, not a map. The typed path refuses such a
        # record, so only this (slower) path pays for the check.
        data = data[3:]
    if data.lstrip()[:1] == b"{":
        return loads_json(data, distinct_keys=True)
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, object_pairs_hook=distinct_pairs)
    except RepeatedKey as repeated:
        raise InvalidEvent(f"{repeated} in one map of the event") from None
    except msgpack.StackError:
        raise InvalidEvent("malformed msgpack: nested too deep") from None
    except Exception as error:  # msgpack raises a variety of types on hostile input
        detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise InvalidEvent(f"malformed msgpack ({detail[:200]})") from None


_Number = int | float | None  # int stays int (10, not 10.0): decisions keep their bytes


class _OutcomeFields(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """A slot outcome as the schema types it (SPEC 3); written without its None fields.

    ``gc=False``: decoded structs hold only strings, numbers and a dict and are
    never part of a cycle, so the cyclic collector need not track them (it
    otherwise rescans every one of them in a long batch)."""

    result: str
    peak: _Number = None
    target: _Number = None
    direction: str | None = None
    range: _Number = None
    profit: _Number = None


class _EventFields(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    """A day event as the schema types it. Unknown keys are refused here, so such a
    record takes the generic path, which ignores them: msgspec skips an unknown
    value without checking its UTF-8 or its depth, where msgpack and ``json``
    refuse the whole record. Written with the keys in ``DayEvent.to_dict``'s
    order (``kw_only`` lets the optional fields come first), so the bytes are its."""

    stream: str
    instrument: str | msgspec.UnsetType = msgspec.UNSET
    session: str | msgspec.UnsetType = msgspec.UNSET
    date: str
    slots: dict[str, _OutcomeFields]


class EventDecoder:
    """msgpack or JSON bytes -> a valid ``DayEvent``, or ``InvalidEvent`` with the reason.

    One per configuration: it holds the typed decoders and the configuration's
    ``EventRules`` (which remember the streams and dates they have checked).
    """

    def __init__(self, config: SequencerConfig, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.config = config
        self.max_bytes = max_bytes
        self.rules = EventRules(config)
        self._msgpack = msgspec.msgpack.Decoder(_EventFields).decode
        self._json = msgspec.json.Decoder(_EventFields).decode
        self._msgpack_size = msgspec.msgpack.Encoder().encode
        self._json_size = msgspec.json.Encoder().encode

    def decode(self, data: bytes, latest_date: str | None = None) -> DayEvent:
        if data is None or not data or len(data) > self.max_bytes:
            return self._generic(data, latest_date)  # says which limit
        fields = self._typed(data, json_text=data.lstrip()[:1] == b"{")
        if fields is None:
            return self._generic(data, latest_date)  # says why
        return self.of_fields(fields, latest_date)

    def json_fields(self, data: bytes) -> "_EventFields | None":
        """The typed fields of a JSON day event, or None when the schema refuses it (the
        caller then takes the generic path, ``loads_json`` and ``parse_day_event``)."""
        return self._typed(data, json_text=True)

    def _typed(self, data: bytes, *, json_text: bool) -> "_EventFields | None":
        """The typed fields, or None for a record the schema refuses or that gives a key
        twice, which the typed decoders read as its last value (the generic path names it).

        The fields written again are as long as the record (JSON: in its compact
        form) unless the record had more to it: a repeated key, or only another
        spelling (an explicit null, a wider number, an escape); only then is it
        parsed with the pairs hook, so a record from our own or a plain producer
        costs one write."""
        try:
            if json_text:
                fields = self._json(data)
                whole = len(self._json_size(fields)) == len(msgspec.json.format(data, indent=-1))
            else:
                fields = self._msgpack(data)
                whole = len(self._msgpack_size(fields)) == len(data)
        except Exception:  # noqa: BLE001 - any refusal of the schema: the generic path says why
            return None
        if not whole and _gives_a_key_twice(data, json_text):
            return None
        return fields

    def of_fields(self, fields: "_EventFields", latest_date: str | None) -> DayEvent:
        """The day event of typed fields (``json_fields``), checked by the rules."""
        instrument = None if fields.instrument is msgspec.UNSET else fields.instrument
        session = None if fields.session is msgspec.UNSET else fields.session
        return self.rules.day_event(fields.stream, instrument, session, fields.date, fields.slots,
                                    latest_date)

    def _generic(self, data: bytes, latest_date: str | None) -> DayEvent:
        return parse_day_event(decode_payload(data, self.max_bytes), self.config, latest_date)


def _gives_a_key_twice(data: bytes, json_text: bool) -> bool:
    """Whether a map of the JSON or msgpack ``data`` gives a key twice (or cannot be
    read with the pairs hook at all: the generic path then says why)."""
    try:
        if json_text:
            json.loads(data, object_pairs_hook=distinct_pairs)
        else:
            msgpack.unpackb(data, raw=False, strict_map_key=False, object_pairs_hook=distinct_pairs)
    except Exception:  # noqa: BLE001 - RepeatedKey, or unreadable here
        return True
    return False


_LAST_DECODER: list[EventDecoder] = []  # the decoder of the last config ``decode_event`` saw


def decode_event(data: bytes, config: SequencerConfig, max_bytes: int = DEFAULT_MAX_EVENT_BYTES,
                 latest_date: str | None = None) -> DayEvent:
    """``EventDecoder(config, max_bytes).decode``; a caller with many events keeps its own decoder."""
    decoder = _LAST_DECODER[0] if _LAST_DECODER else None
    if decoder is None or decoder.config is not config or decoder.max_bytes != max_bytes:
        decoder = EventDecoder(config, max_bytes)
        _LAST_DECODER[:] = [decoder]
    return decoder.decode(data, latest_date)


def _as_builtin(value: Any) -> Any:
    """msgspec's hook for what it does not write itself: a subclass of float or str (a
    ``numpy.float64``, say), which msgpack wrote as the float or string it is."""
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    raise TypeError(f"Encoding objects of type {type(value).__name__} is unsupported")


#: One encoder for every record: it keeps nothing between calls (each gets its own
#: output buffer), so threads can share it. The hook runs only for a value msgspec
#: does not know; plain values never reach it.
_RECORD_ENCODER = msgspec.msgpack.Encoder(enc_hook=_as_builtin)


def encode_event(event: DayEvent) -> bytes:
    """The msgpack bytes of ``event.to_dict()`` (tested byte for byte), built by msgspec."""
    return _RECORD_ENCODER.encode(_EventFields(
        stream=event.stream, instrument=event.instrument, session=event.session, date=event.date,
        slots={slot: _OutcomeFields(*outcome) for slot, outcome in event.slots.items()}))


class _DecisionFields(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A decision as the schema types it, its fields in ``DECISION_FIELDS`` order (the
    order ``Decision.to_dict`` wrote them: msgspec writes a Struct's fields in order,
    so the bytes are those ``msgpack`` packed). Numbers are ``int | float``: an int
    peak stays an int, as the fold gave it. ``gc=False``: plain values, never a cycle."""

    stream: str
    instrument: str
    date: str
    traded_slot: str
    result: str | None
    peak: _Number
    slot_sums: dict[str, int]
    time_change: bool
    next_slot: str
    rolling_median: _Number
    rolling_median_target: int | float
    median_ladder_target: int | float
    ladder_step: int
    days_at_level: int
    next_target: int | float
    no_trade_next: bool
    time_reason: str
    target_reason: str
    traded: bool
    profit: int | float
    profit_usd: int | float


assert _DecisionFields.__struct_fields__ == DECISION_FIELDS, "the decision schema follows Decision"
_SLOT_SUMS = DECISION_FIELDS.index("slot_sums")  # the one field that is not a plain value


_DECISION_DECODER = msgspec.msgpack.Decoder(_DecisionFields).decode


def encode_decision(decision: Decision) -> bytes:
    """The msgpack bytes of ``decision.to_dict()`` (tested byte for byte against
    ``msgpack.Packer(use_bin_type=True)``), written by msgspec."""
    # slot_sums as to_dict gives it: a read-only mapping written as the map it holds,
    # set on the struct built from the tuple as it is (no slices, no second unpacking).
    fields = _DecisionFields(*decision)
    fields.slot_sums = dict(decision[_SLOT_SUMS])
    return _RECORD_ENCODER.encode(fields)


def decode_decision(data: bytes) -> Decision:
    """msgpack bytes -> ``Decision``; a record that is not one raises.

    The schema types every field in C. A record it refuses is read again as
    before (``msgpack.unpackb`` + ``Decision.from_dict``), which raises what it
    always raised: msgpack's error on foreign bytes, the missing fields, or that
    the decision was written before trades were recorded. One that still passes
    has a field of the wrong type: ``SequencerError`` names it (before the typed
    codec such a decision was accepted as it was).
    """
    try:
        fields = _DECISION_DECODER(data)
    except Exception:  # noqa: BLE001 - any refusal of the schema: the generic path says why
        return _decision_of_map(data)
    values = msgspec.structs.astuple(fields)
    return Decision(*values[:_SLOT_SUMS], MappingProxyType(values[_SLOT_SUMS]), *values[_SLOT_SUMS + 1:])


def _decision_of_map(data: bytes) -> Decision:
    doc = msgpack.unpackb(data, raw=False)
    decision = Decision.from_dict(doc)
    try:  # only unknown keys (which from_dict ignores) pass here
        msgspec.convert({name: doc[name] for name in DECISION_FIELDS}, _DecisionFields)
    except msgspec.ValidationError as error:
        raise SequencerError(f"decision with a field of the wrong type: {error}") from None
    return decision


class _StateFields(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, gc=False):
    """A SPEC 4 state document (table value or checkpoint file) as the schema types it.

    Exactly the SPEC 4 keys, each of its JSON type; ``domain.state.state_of_document``
    then applies the rules a schema cannot say. A document it refuses (the older
    layout, a wrong type, a missing or extra key, NaN or a number beyond a float)
    takes the generic path, ``json.loads`` + ``state_from_dict``/``load_state_document``.
    """

    schema_version: Literal[1]
    stream: str
    instrument: str
    session: str
    config_id: str
    saved_at: str | msgspec.UnsetType = msgspec.UNSET
    last_processed_date: str | None
    events_applied: int
    rolling_median_window: list[int | float]
    median_ladder_window: list[int | float]
    time_slot_histories: dict[str, list[int]]
    current_time: str
    current_target: int | float
    rolling_median_target: int | float
    median_ladder_target: int | float
    median_ladder_current_step: int
    median_ladder_days_at_level: int
    no_trade_next: bool
    source_offsets: dict[str, int] = {}


_STATE_DECODER = msgspec.json.Decoder(_StateFields).decode


def state_fields(data: bytes) -> "_StateFields | None":
    """The typed fields of a state document, or None when the schema refuses it."""
    try:
        return _STATE_DECODER(data)
    except Exception:  # noqa: BLE001 - any refusal: the generic path says why
        return None


def state_of_fields(fields: "_StateFields", config: SequencerConfig) -> StreamState:
    """The state of typed fields (``state_fields``), checked by the domain's rules."""
    doc = msgspec.structs.asdict(fields)
    if fields.saved_at is msgspec.UNSET:
        del doc["saved_at"]
    return state_of_document(doc, config)


#: The refusal of a state document nested deeper than ``json.loads`` (or a repr of the
#: value in a refusal) can recurse: a state needs 3 levels, a hostile one has 100,000.
NESTED_TOO_DEEP = "malformed JSON: nested too deep"


def encode_state(state: StreamState) -> bytes:
    """The stream-states table value (and its changelog record): the SPEC 4 state JSON, compact.

    ``json.dumps``, not msgspec: msgspec writes ``1e-05`` as ``1e-5`` and ``1e+16`` as
    ``1e16``, and a table value keeps its bytes (docs/benchmarks.md has the measure)."""
    return json.dumps(state_to_dict(state), separators=(",", ":"), allow_nan=False).encode()


def decode_state(data: bytes, config: SequencerConfig) -> StreamState:
    """A table value back to the state; ``ValueError``/``TypeError`` for one that is not a valid state.

    Typed by msgspec and checked by the domain's rules; what the schema refuses is
    read by ``json.loads`` + ``state_from_dict``, which says why (``InvalidState``, or
    the JSON's ``ValueError``), as before.
    """
    fields = state_fields(data)
    if fields is not None:
        return state_of_fields(fields, config)
    try:
        return state_from_dict(json.loads(data), config)
    except RecursionError:
        raise InvalidState(NESTED_TOO_DEEP) from None


def _cut_bytes(name: str, data: bytes | None, limit: int) -> dict[str, Any]:
    """``data`` cut to ``limit`` bytes, with its full length, sha256 and whether it was cut."""
    if data is None:
        return {name: None, f"{name}_length": None, f"{name}_sha256": None, f"{name}_truncated": False}
    return {name: data[:limit], f"{name}_length": len(data),
            f"{name}_sha256": hashlib.sha256(data).hexdigest(), f"{name}_truncated": len(data) > limit}


class _DeadLetterFields(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A dead letter as written, in its key order (the bytes ``msgpack`` packed)."""

    reason: str
    stream: str | None
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    key_length: int | None
    key_sha256: str | None
    key_truncated: bool
    value: bytes | None
    value_length: int | None
    value_sha256: str | None
    value_truncated: bool


_DEAD_LETTER_DECODER = msgspec.msgpack.Decoder(_DeadLetterFields).decode


def encode_dead_letter(letter: "DeadLetter", max_value_bytes: int = DEFAULT_DEAD_LETTER_VALUE_BYTES) -> bytes:
    """A dead letter as a msgpack map; original key and value cut so the letter always fits.

    ``value`` holds at most ``max_value_bytes`` of the original bytes;
    ``value_length`` and ``value_sha256`` describe the whole original, and
    ``value_truncated`` says whether it was cut (the same four fields for ``key``).
    """
    record = letter.record
    return _RECORD_ENCODER.encode(_DeadLetterFields(
        reason=letter.reason,
        stream=letter.stream,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        **_cut_bytes("key", record.key, DEAD_LETTER_KEY_BYTES),
        **_cut_bytes("value", record.value, max_value_bytes),
    ))


def dead_letter_key(letter: "DeadLetter") -> bytes | None:
    """The Kafka key of a dead letter: the original key, cut like the one inside it."""
    key = letter.record.key
    return None if key is None else key[:DEAD_LETTER_KEY_BYTES]


def decode_dead_letter(data: bytes) -> dict[str, Any]:
    """A dead letter's map. Typed by msgspec; a record its schema refuses (another
    writer's, on a shared topic) is read by ``msgpack.unpackb`` as before, which
    returns whatever it holds or raises msgpack's error."""
    try:
        return msgspec.structs.asdict(_DEAD_LETTER_DECODER(data))
    except Exception:  # noqa: BLE001 - not a letter of ours: the generic path
        return msgpack.unpackb(data, raw=False)
