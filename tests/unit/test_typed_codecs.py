"""The typed event decoder (msgspec + ``EventRules``) against the validation it replaced.

``tests/support/frozen_event_validation.py`` is a copy of the decoder as it was before
(``decode_payload`` + ``parse_day_event``). On arbitrary input, valid events,
every kind of broken field, wrong types, extra and non-string keys, deep
nesting, huge numbers, damaged and random bytes, msgpack and JSON, the new
decoder must accept the same records as the same event (values and their
types: an int peak stays an int) and refuse the others with the same reason,
word for word, and never raise anything else.
"""

from __future__ import annotations

import json
import math

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sequencer.app.codecs import EventDecoder, decode_event, encode_event
from sequencer.domain import InvalidEvent, SequencerConfig
from sequencer.domain.events import EventRules, latest_event_date

from tests.support import frozen_event_validation as frozen
from tests.support.repeated_keys import repeats_a_key

import datetime as dt

CONFIG = SequencerConfig()
LATEST = latest_event_date(dt.date(2025, 6, 30))
SMALL_LIMIT = 300  # a size limit some generated records exceed

# --- values of every kind a field may hold ---------------------------------------------------

numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers(min_value=-10**15, max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0, max_value=200),
    st.sampled_from([0, -0.0, 1e12, 1e12 + 1, -1e12, 10**12, 10**12 + 1, 1e-300, 2**53 + 1]),
)
hostile = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=12), st.binary(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 9)), inner, max_size=3)),
    max_leaves=8,
)
results = st.one_of(
    st.sampled_from(["Win", "Loss", "BE", "NoTrade", "TIME", "win", "LOSS", "be", "break_even", "Breakeven",
                     "no trade", "NO_TRADE", "notrade", " Win ", "time", "Tie", "", "WIN\n"]),
    st.text(max_size=10), hostile)
directions = st.one_of(st.none(), st.sampled_from(["Long", "Short", "", "x" * 33, "Lo\nng", "L\x00"]),
                       st.text(max_size=40), hostile)
slot_names = st.one_of(st.sampled_from(["07:30", "08:00", "09:00", "7:30", "08:00:00", "09:30", "24:00",
                                        "7:3", " 08:00", "10:00"]),
                       st.text(max_size=8), st.integers(0, 2000))
streams = st.one_of(st.sampled_from(["ES1", "NQ1", "ES2", "NQ2", "CL1", "GC2", "RTY1", "ES", "1ES", "ES1\n",
                                     "ES-1", "E" * 33, "", "es1", "ES01", "YM1"]),
                    st.text(max_size=10), hostile)
dates = st.one_of(st.sampled_from(["2025-01-15", "2025-07-01", "2025-07-02", "2025-02-30", "2025-1-5",
                                   "2025-01-15T00:00:00", "2025-01-15 10:00", " 2025-01-15", "20250115", ""]),
                  st.dates().map(str), st.text(max_size=12), hostile)
NUMBER_FIELDS = ("peak", "target", "range", "profit")


@st.composite
def outcomes(draw):
    outcome = {}
    if draw(st.integers(0, 9)):
        outcome["result"] = draw(results)
    for name in NUMBER_FIELDS:
        if draw(st.booleans()):
            outcome[name] = draw(st.one_of(st.none(), numbers, numbers, hostile))
    if draw(st.booleans()):
        outcome["direction"] = draw(directions)
    if not draw(st.integers(0, 9)):
        outcome[draw(st.one_of(st.text(max_size=6), st.integers(0, 3)))] = draw(hostile)
    return outcome if draw(st.integers(0, 19)) else draw(hostile)


@st.composite
def events(draw):
    event = {}
    if draw(st.integers(0, 19)):
        event["stream"] = draw(streams)
    for name, values in (("instrument", st.one_of(st.sampled_from(["ES", "NQ", "CL", "XX", "es"]), hostile)),
                         ("session", st.one_of(st.sampled_from(["S1", "S2", "S3", "s1"]), hostile))):
        if not draw(st.integers(0, 3)):
            event[name] = draw(values)
    if draw(st.integers(0, 19)):
        event["date"] = draw(dates)
    if draw(st.integers(0, 19)):
        event["slots"] = (draw(st.dictionaries(slot_names, outcomes(), max_size=4))
                          if draw(st.integers(0, 9)) else draw(hostile))
    if not draw(st.integers(0, 9)):
        event[draw(st.one_of(st.text(max_size=6), st.integers(0, 3), st.none()))] = draw(hostile)
    return event


VALID_SLOTS = {"S1": ("07:30", "08:00", "09:00"), "S2": ("09:30", "10:00", "10:30", "11:00")}


@st.composite
def valid_events(draw):
    stream = draw(st.sampled_from(["ES1", "ES2", "NQ1", "CL2", "NG1", "YM2"]))
    session = "S" + stream[-1]
    slots = {}
    for slot in draw(st.lists(st.sampled_from(VALID_SLOTS[session]), unique=True)):
        outcome = {"result": draw(st.sampled_from(["Win", "Loss", "BE", "NoTrade", "TIME", "win", "no trade"]))}
        for name in NUMBER_FIELDS:
            if draw(st.booleans()):
                low = 0 if name in ("peak", "range") else -1e12
                outcome[name] = draw(st.one_of(st.floats(low, 1e12), st.integers(int(low), 10**12), st.none()))
        if draw(st.booleans()):
            outcome["direction"] = draw(st.sampled_from(["Long", "Short"]))
        slots[slot] = outcome
    doc = {"stream": stream, "date": draw(st.dates(dt.date(2000, 1, 1), dt.date(2025, 7, 1))).isoformat(),
           "slots": slots}
    if draw(st.booleans()):
        doc.update(instrument=stream[:-1], session=session)
    return doc


@st.composite
def near_valid_events(draw):
    """A valid event with zero to three faults: a field replaced, removed or added, in the
    event or in one of its slot outcomes (most records of a real feed are nearly right)."""
    doc = draw(valid_events())
    for _ in range(draw(st.integers(0, 3))):
        target = doc
        slots = doc.get("slots")
        outcomes_there = sorted(k for k, v in slots.items() if isinstance(k, str) and isinstance(v, dict)) \
            if isinstance(slots, dict) else []
        if outcomes_there and draw(st.booleans()):
            target = slots[draw(st.sampled_from(outcomes_there))]
        fields = sorted(k for k in target if isinstance(k, str))
        action = draw(st.integers(0, 3))
        if action == 0 and fields:
            target[draw(st.sampled_from(fields))] = draw(st.one_of(hostile, numbers, results, streams, dates))
        elif action == 1 and fields:
            del target[draw(st.sampled_from(fields))]
        elif action == 2:
            target[draw(st.one_of(st.sampled_from(["extra", "peak", "result", "stream", "date", "slots"]),
                                  st.integers(0, 3)))] = draw(hostile)
        elif isinstance(slots, dict):
            slots[draw(slot_names)] = draw(outcomes())
    return doc


def _json(doc) -> bytes | None:
    try:
        return json.dumps(doc).encode()
    except (TypeError, ValueError):  # bytes, non-string keys json cannot write
        return None


@st.composite
def records(draw):
    """Bytes of an event: msgpack or JSON, sometimes damaged, or random bytes."""
    doc = draw(st.one_of(events(), near_valid_events(), near_valid_events(), near_valid_events()))
    packed = msgpack.packb(doc, use_bin_type=True)
    as_json = _json(doc)
    data = draw(st.sampled_from([packed, as_json or packed, (b" \n" + as_json) if as_json else packed]))
    # A quarter of the records damaged (sampled: integers() would favour its bounds).
    damage = draw(st.sampled_from([None] * 12 + [0, 1, 2, 3]))
    if damage == 0 and data:
        data = data[:draw(st.integers(1, len(data) - 1))] if len(data) > 1 else data                     # truncated
    elif damage == 1 and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]  # one byte changed
    elif damage == 2:
        data = data + draw(st.binary(min_size=1, max_size=4))                  # trailing bytes
    elif damage == 3:
        data = draw(st.binary(max_size=60))                                    # random bytes
    return data


def outcome_of(decode, data):
    """What a decoder made of ``data``: the event with every value's type, or the reason."""
    try:
        event = decode(data)
    except InvalidEvent as error:
        return ("refused", error.reason)
    slots = tuple((slot, tuple((value, type(value)) for value in outcome)) for slot, outcome in event.slots.items())
    return ("accepted", event.stream, event.instrument, event.session, event.date, slots)


def _same(a, b) -> bool:
    # NaN never equals itself; no accepted event holds one, but compare safely.
    return a == b or (repr(a) == repr(b) and "nan" in repr(a))


DECODER = EventDecoder(CONFIG)
SMALL = EventDecoder(CONFIG, SMALL_LIMIT)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records(), st.sampled_from([None, LATEST]))
@example(b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":' + b"[" * 3000 + b"]" * 3000 + b"}}", LATEST)
@example(b"\x84\xa6stream\xa3ES1\xa4date\xaa2025-01-06\xa5slots\x80\xa1x" + b"\x91" * 3000 + b"\x90", None)
@example(b"\x84\xa6stream\xa3ES1\xa4date\xaa2025-01-06\xa5slots\x80\xa1x\xa1\xff", None)  # not UTF-8, extra key
@example(b'{"stream":"ES1","date":"2025-01-06","slots":{},"x":"\xff"}', None)
@example(b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":{"result":"Win","peak":1e400}}}', None)
@example(b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":{"result":"Win","peak":NaN}}}', None)
@example(b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":{"result":"Win","peak":100000000000000000000}}}', None)
@example(b'{"stream":"ES1","stream":"NQ1","date":"2025-01-06","slots":{"09:30":{"result":"Win"}}}', None)
@example(msgpack.packb({"stream": "ES1", "date": "2025-01-06", "slots": {"7:30": {"result": "Win"},
                                                                       "07:30": {"result": "Loss"}}}), None)
def test_typed_decoder_accepts_and_refuses_as_the_old_validation(data, latest):
    """As the old validation, except that a map giving a key twice is refused (the old
    one read the key's last value): where the old one took the record or refused it
    for a fault found after the repeat, the new one says which key is repeated."""
    for decoder, limit in ((DECODER, frozen.DEFAULT_MAX_EVENT_BYTES), (SMALL, SMALL_LIMIT)):
        expected = outcome_of(lambda d: frozen.decode_event(d, CONFIG, limit, latest), data)
        found = outcome_of(lambda d: decoder.decode(d, latest), data)
        if found[0] == "refused" and found[1].endswith("of the event") and "is given twice" in found[1]:
            assert repeats_a_key(data) or expected[0] == "refused", (found, expected)
            continue
        assert _same(found, expected)
        assert found[0] == "refused" or not repeats_a_key(data), found




@settings(max_examples=1500, deadline=None)
@given(st.one_of(events(), near_valid_events()), st.sampled_from([None, LATEST]))
def test_well_formed_bytes_of_any_event_decode_as_before(doc, latest):
    """Every generated event, undamaged, in both wire formats (most of them refused by a rule)."""
    for data in (msgpack.packb(doc, use_bin_type=True), _json(doc)):
        if data is None:
            continue
        expected = outcome_of(lambda d: frozen.decode_event(d, CONFIG, frozen.DEFAULT_MAX_EVENT_BYTES, latest), data)
        assert _same(outcome_of(lambda d: decode_event(d, CONFIG, latest_date=latest), data), expected)


@settings(max_examples=1000, deadline=None)
@given(valid_events())
def test_valid_events_take_the_typed_path_and_equal_the_old_result(doc):
    """Valid events are accepted by the schema itself (the fast path), not by the fallback."""
    for data in (msgpack.packb(doc, use_bin_type=True), json.dumps(doc).encode()):
        expected = outcome_of(lambda d: frozen.decode_event(d, CONFIG, latest_date=LATEST), data)
        assert expected[0] == "accepted"
        decoder = EventDecoder(CONFIG)
        decoder._generic = None  # a fallback would fail here
        assert outcome_of(lambda d: decoder.decode(d, LATEST), data) == expected


def test_an_int_peak_stays_an_int_and_a_float_a_float():
    data = msgpack.packb({"stream": "ES1", "date": "2025-01-06",
                          "slots": {"07:30": {"result": "Win", "peak": 10, "profit": 10.0}}})
    outcome = decode_event(data, CONFIG).slots["07:30"]
    assert type(outcome.peak) is int and type(outcome.profit) is float


def test_rules_remember_nothing_wrong():
    """A refused identity or date is refused again (not remembered as valid)."""
    rules = EventRules(CONFIG)
    for _ in range(2):
        with pytest.raises(InvalidEvent, match="unknown instrument"):
            rules.identity("XX1", None, None)
        with pytest.raises(InvalidEvent, match="in the future"):
            rules.date("2025-07-02", LATEST)
    assert rules.date("2025-07-02", None) == "2025-07-02"
    assert rules.identity("ES1", None, None) == ("ES1", "ES", "S1")
    assert math.isclose(rules.outcome("07:30", "win", 1.5, None, None, None, None).peak, 1.5)


@settings(max_examples=500, deadline=None)
@given(valid_events())
def test_encode_event_writes_the_bytes_of_packb_of_to_dict(doc):
    """The publisher's bytes are what ``msgpack.packb(event.to_dict())`` wrote before."""
    event = decode_event(msgpack.packb(doc), CONFIG)
    data = encode_event(event)
    assert data == msgpack.packb(event.to_dict(), use_bin_type=True)
    assert decode_event(data, CONFIG) == event


# --- a key given twice ------------------------------------------------------------------------

def _pairs_msgpack(node, repeat) -> bytes:
    """msgpack of ``node`` written pair by pair; ``repeat(path, pairs)`` may add a pair."""
    packer = msgpack.Packer(use_bin_type=True)

    def pack(value, path) -> bytes:
        if isinstance(value, dict):
            pairs = repeat(path, list(value.items()))
            return packer.pack_map_header(len(pairs)) + b"".join(
                pack(k, path) + pack(v, path + (k,)) for k, v in pairs)
        return packer.pack(value)
    return pack(node, ())


def _pairs_json(node, repeat, separators=(", ", ": ")) -> bytes:
    def write(value, path) -> str:
        if isinstance(value, dict):
            pairs = repeat(path, list(value.items()))
            return "{" + separators[0].join(json.dumps(k) + separators[1] + write(v, path + (k,))
                                            for k, v in pairs) + "}"
        return json.dumps(value)
    return write(node, ()).encode()


@settings(max_examples=500, deadline=None)
@given(valid_events(), st.data())
def test_a_key_given_twice_in_any_map_of_an_event_is_refused_naming_the_key(doc, data):
    """msgspec, msgpack and json read a repeated key as its last value: a slot's result
    or peak, or the stream itself, would be one nobody chose."""
    maps = [()] + [("slots",)] + [("slots", slot) for slot in doc["slots"]]
    at = data.draw(st.sampled_from([m for m in maps if _at(doc, m)]))
    key = data.draw(st.sampled_from(sorted(_at(doc, at))))
    value = data.draw(st.sampled_from([_at(doc, at)[key], None, "Loss", 99.5, {"result": "Win"}]))
    first = data.draw(st.booleans())

    def repeat(path, pairs):
        if path != at:
            return pairs
        return [(key, value)] + pairs if first else pairs + [(key, value)]

    for record in (_pairs_msgpack(doc, repeat), _pairs_json(doc, repeat), _pairs_json(doc, repeat, (",", ":"))):
        assert outcome_of(lambda d: DECODER.decode(d, LATEST), record) == (
            "refused", f"key {key!r} is given twice in one {'object' if record[:1] == b'{' else 'map'} of the event")


@settings(max_examples=300, deadline=None)
@given(valid_events(), st.sampled_from(["pairs", "compact", "spaced", "nulls", "float32", "str8", "escaped"]))
def test_other_spellings_of_an_event_are_not_taken_for_a_repeated_key(doc, spelling):
    """The check rereads a record only when writing its fields again gives another length;
    records that differ for other reasons (white space, explicit nulls, 32-bit floats,
    wider strings, escapes) decode as the plain record does."""
    plain = msgpack.packb(doc, use_bin_type=True)
    expected = outcome_of(lambda d: DECODER.decode(d, LATEST), plain)
    assert expected[0] == "accepted"
    keep = lambda path, pairs: pairs  # noqa: E731
    if spelling == "pairs":
        record = _pairs_msgpack(doc, lambda path, pairs: pairs[::-1])
    elif spelling == "compact":
        record = json.dumps(doc, separators=(",", ":")).encode()
    elif spelling == "spaced":
        record = json.dumps(doc, indent=2).encode()
    elif spelling == "nulls":
        record = _pairs_json(doc, lambda path, pairs: pairs + ([("target", None)] if len(path) == 2 and
                                                              "target" not in dict(pairs) else []))
        expected = outcome_of(lambda d: DECODER.decode(d, LATEST), json.dumps(doc).encode())
    elif spelling == "float32":
        record = msgpack.packb(doc, use_bin_type=True, use_single_float=True)
        expected = outcome_of(lambda d: frozen.decode_event(d, CONFIG, latest_date=LATEST), record)
    elif spelling == "str8":
        record = _pairs_msgpack(doc, keep).replace(b"\xa6stream", b"\xd9\x06stream")
    else:
        record = json.dumps(doc, ensure_ascii=True).replace('"stream"', '"\\u0073tream"').encode()
    assert outcome_of(lambda d: DECODER.decode(d, LATEST), record) == expected


def _at(doc, path):
    node = doc
    for key in path:
        node = node[key]
    return node if isinstance(node, dict) else None
