"""Day events (SPEC 3): validation of untrusted data and the wire codecs."""

from __future__ import annotations

import json
import math

import msgpack
import pytest

from sequencer.domain.events import NUMBER_LIMIT
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.app.codecs import (
    DEFAULT_MAX_EVENT_BYTES,
    decode_decision,
    decode_event,
    encode_decision,
    encode_event,
)
from sequencer.domain import (
    DayEvent,
    InvalidEvent,
    SequencerConfig,
    SlotOutcome,
    apply_day,
    initial_state,
    parse_day_event,
)

CONFIG = SequencerConfig()


def good(**changes) -> dict:
    """A valid ES1 event as decoded JSON/msgpack data, with top-level changes."""
    doc = {
        "stream": "ES1", "instrument": "ES", "session": "S1", "date": "2025-01-15",
        "slots": {
            "07:30": {"result": "Win", "peak": 18.25, "target": 10, "direction": "Long",
                      "range": 9.5, "profit": 10.0},
            "08:00": {"result": "Loss"},
        },
    }
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


_DROP = object()


def with_slot(slot: str, outcome) -> dict:
    doc = good()
    doc["slots"] = {slot: outcome}
    return doc


# --- accepted input ----------------------------------------------------------------------


def test_a_full_event_parses():
    event = parse_day_event(good(), CONFIG)
    assert (event.stream, event.instrument, event.session, event.date) == ("ES1", "ES", "S1", "2025-01-15")
    assert event.slots["07:30"] == SlotOutcome("Win", 18.25, 10, "Long", 9.5, 10.0)
    assert event.slots["08:00"] == SlotOutcome("Loss")
    assert "09:00" not in event.slots  # a slot may be missing


def test_instrument_and_session_are_implied_by_the_stream():
    event = parse_day_event(good(instrument=_DROP, session=_DROP), CONFIG)
    assert (event.instrument, event.session) == ("ES", "S1")
    event = parse_day_event({"stream": "NQ2", "date": "2025-01-15", "slots": {"10:30": {"result": "BE"}}}, CONFIG)
    assert (event.instrument, event.session) == ("NQ", "S2")


@pytest.mark.parametrize(
    "spelling, name",
    [
        ("Win", "Win"), ("win", "Win"), ("WIN", "Win"),
        ("Loss", "Loss"), ("loss", "Loss"), ("LOSS", "Loss"),
        ("BE", "BE"), ("be", "BE"), ("BREAK_EVEN", "BE"), ("break_even", "BE"),
        ("BREAKEVEN", "BE"), ("BreakEven", "BE"),
        ("NoTrade", "NoTrade"), ("notrade", "NoTrade"), ("NOTRADE", "NoTrade"),
        ("NO_TRADE", "NoTrade"), ("no_trade", "NoTrade"), ("NO TRADE", "NoTrade"),
        ("No Trade", "NoTrade"),
        ("TIME", "TIME"), ("time", "TIME"), ("Time", "TIME"),
    ],
)
def test_accepted_result_spellings(spelling, name):
    event = parse_day_event(with_slot("07:30", {"result": spelling}), CONFIG)
    assert event.slots["07:30"].result == name


@pytest.mark.parametrize("raw, slot", [("7:30", "07:30"), ("07:30:00", "07:30"), ("08:00", "08:00")])
def test_slot_times_are_normalised(raw, slot):
    event = parse_day_event(with_slot(raw, {"result": "Win"}), CONFIG)
    assert list(event.slots) == [slot]


def test_slots_come_out_in_session_order():
    doc = good(slots={"09:00": {"result": "Win"}, "07:30": {"result": "BE"}, "08:00": {"result": "Loss"}})
    assert list(parse_day_event(doc, CONFIG).slots) == ["07:30", "08:00", "09:00"]


def test_optional_outcome_fields():
    event = parse_day_event(with_slot("07:30", {"result": "Win", "peak": None}), CONFIG)
    assert event.slots["07:30"] == SlotOutcome("Win")
    event = parse_day_event(with_slot("07:30", {"result": "Win", "peak": 0, "range": 0, "profit": -3.5,
                                                "target": -1}), CONFIG)
    assert (event.slots["07:30"].peak, event.slots["07:30"].range, event.slots["07:30"].profit) == (0, 0, -3.5)


def test_an_iso_timestamp_counts_by_its_date():
    assert parse_day_event(good(date="2025-01-15T00:00:00"), CONFIG).date == "2025-01-15"


# --- invalid events: each with its own reason ------------------------------------------------

INVALID = [
    # (event data, words the reason must contain)
    ([], "map"),
    ("ES1", "map"),
    (good(stream=_DROP), "stream"),
    (good(stream=None), "stream"),
    (good(stream=""), "stream"),
    (good(stream=5), "stream"),
    (good(stream="../x"), "must match"),
    (good(stream="ES 1"), "must match"),
    (good(stream="E" * 32 + "1"), "must match"),
    (good(stream="ES", instrument=_DROP, session=_DROP), "session digit"),
    (good(stream="XX1", instrument=_DROP, session=_DROP), "unknown instrument"),
    (good(stream="ES3", instrument=_DROP, session=_DROP), "unknown session"),
    (good(instrument="XX"), "unknown instrument"),
    (good(session="S9"), "unknown session"),
    (good(instrument="NQ"), "disagree"),
    (good(session="S2"), "disagree"),
    (good(instrument=5), "instrument"),
    (good(session=["S1"]), "session"),
    (good(date=_DROP), "date"),
    (good(date=None), "date"),
    (good(date=""), "date"),
    (good(date="2025-13-01"), "date"),
    (good(date="2025-02-30"), "date"),
    (good(date="yesterday"), "date"),
    (good(date=20250115), "date"),
    (good(slots=_DROP), "slots"),
    (good(slots=[{"result": "Win"}]), "slots"),
    (good(slots={"09:30": {"result": "Win"}}), "unknown slot"),
    (good(slots={"25:00": {"result": "Win"}}), "slot time"),
    (good(slots={"half past seven": {"result": "Win"}}), "slot time"),
    (good(slots={"7:30": {"result": "Win"}, "07:30": {"result": "Loss"}}), "twice"),
    (with_slot("07:30", "Win"), "map"),
    (with_slot("07:30", {}), "missing result"),
    (with_slot("07:30", {"result": None, "peak": 3}), "missing result"),
    (with_slot("07:30", {"result": "Won"}), "bad result"),
    (with_slot("07:30", {"result": ""}), "bad result"),
    (with_slot("07:30", {"result": "NO-TRADE"}), "bad result"),
    (with_slot("07:30", {"result": "B E"}), "bad result"),
    (with_slot("07:30", {"result": 1}), "bad result"),
    (with_slot("07:30", {"result": True}), "bad result"),
    (with_slot("07:30", {"result": "Win", "peak": -0.25}), "peak"),
    (with_slot("07:30", {"result": "Win", "peak": math.nan}), "peak"),
    (with_slot("07:30", {"result": "Win", "peak": math.inf}), "peak"),
    (with_slot("07:30", {"result": "Win", "peak": -math.inf}), "peak"),
    (with_slot("07:30", {"result": "Win", "peak": "18.25"}), "peak"),
    (with_slot("07:30", {"result": "Win", "peak": True}), "peak"),
    (with_slot("07:30", {"result": "Win", "peak": [1]}), "peak"),
    (with_slot("07:30", {"result": "Win", "range": -1}), "range"),
    (with_slot("07:30", {"result": "Win", "range": "wide"}), "range"),
    (with_slot("07:30", {"result": "Win", "target": math.nan}), "target"),
    (with_slot("07:30", {"result": "Win", "target": False}), "target"),
    (with_slot("07:30", {"result": "Win", "profit": math.inf}), "profit"),
    (with_slot("07:30", {"result": "Win", "profit": "10"}), "profit"),
    (with_slot("07:30", {"result": "Win", "direction": 1}), "direction"),
]


@pytest.mark.parametrize("data, words", INVALID, ids=[f"{i}-{w}" for i, (_, w) in enumerate(INVALID)])
def test_invalid_events_are_refused_with_a_specific_reason(data, words):
    with pytest.raises(InvalidEvent) as info:
        parse_day_event(data, CONFIG)
    assert words in info.value.reason
    assert str(info.value) == info.value.reason


def test_peak_reasons_distinguish_negative_from_non_finite():
    with pytest.raises(InvalidEvent, match=">= 0"):
        parse_day_event(with_slot("07:30", {"result": "Win", "peak": -1}), CONFIG)
    with pytest.raises(InvalidEvent, match="finite"):
        parse_day_event(with_slot("07:30", {"result": "Win", "peak": math.nan}), CONFIG)
    with pytest.raises(InvalidEvent, match="number"):
        parse_day_event(with_slot("07:30", {"result": "Win", "peak": "1"}), CONFIG)


def test_a_configured_instrument_is_accepted_and_unknown_ones_are_not():
    config = SequencerConfig.from_mapping({"instruments": {"RTY": {"base": 5, "increment": 2.5, "tick": 0.1}}})
    assert parse_day_event({"stream": "RTY1", "date": "2025-01-02", "slots": {}}, config).instrument == "RTY"
    with pytest.raises(InvalidEvent, match="unknown instrument"):
        parse_day_event(good(), config)  # ES is not in that config


# --- wire codecs ----------------------------------------------------------------------------


def test_decode_msgpack_and_json_give_the_same_event():
    expected = parse_day_event(good(), CONFIG)
    as_msgpack = msgpack.packb(good(), use_bin_type=True)
    as_json = json.dumps(good()).encode()
    assert decode_event(as_msgpack, CONFIG) == expected
    assert decode_event(as_json, CONFIG) == expected
    assert decode_event(b"  \n" + as_json, CONFIG) == expected  # leading whitespace
    assert decode_event(encode_event(expected), CONFIG) == expected


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (b"{not json", "malformed JSON"),
        (b'{"stream": "ES1"', "malformed JSON"),
        (b"\xc1", "malformed msgpack"),  # 0xc1 is never used by msgpack
        (msgpack.packb(good())[:-4], "malformed msgpack"),  # truncated
        (msgpack.packb(good()) + b"\x00", "malformed msgpack"),  # trailing bytes
        (msgpack.packb([1, 2, 3]), "map"),
        (msgpack.packb(7), "map"),
        (msgpack.packb("ES1"), "map"),
        (b'{"stream": "ES1", "date": "2025-01-15", "slots": {"07:30": {"result": "Win", "peak": NaN}}}',
         "finite"),
        (msgpack.packb({**good(), "stream": "../x"}), "must match"),
        (b"\xff\xfe{", "malformed"),
    ],
)
def test_malformed_bytes_are_invalid_events(data, words):
    with pytest.raises(InvalidEvent) as info:
        decode_event(data, CONFIG)
    assert words in info.value.reason


def test_none_payload_is_an_invalid_event():
    with pytest.raises(InvalidEvent, match="empty"):
        decode_event(None, CONFIG)


def test_oversize_events_are_refused_before_decoding():
    doc = good()
    doc["slots"]["07:30"]["direction"] = "L" * (DEFAULT_MAX_EVENT_BYTES + 10)
    data = msgpack.packb(doc)
    assert len(data) > DEFAULT_MAX_EVENT_BYTES
    with pytest.raises(InvalidEvent, match="exceeds"):
        decode_event(data, CONFIG)
    small = msgpack.packb(good())
    with pytest.raises(InvalidEvent, match=f"limit of {len(small) - 1} bytes"):
        decode_event(small, CONFIG, max_bytes=len(small) - 1)
    assert decode_event(small, CONFIG, max_bytes=len(small)).stream == "ES1"  # the limit is inclusive


# --- hypothesis round trips ------------------------------------------------------------------

STREAMS = {"ES1": "S1", "NQ2": "S2", "CL1": "S1", "YM2": "S2", "GC1": "S1", "NG2": "S2"}
# Valid numbers: finite and within NUMBER_LIMIT (beyond it an event is refused).
finite = st.floats(min_value=-NUMBER_LIMIT, max_value=NUMBER_LIMIT, width=64)
non_negative = st.floats(min_value=0, max_value=NUMBER_LIMIT)


@st.composite
def outcomes(draw):
    doc = {"result": draw(st.sampled_from(["Win", "Loss", "BE", "NoTrade", "TIME"]))}
    for key, values in (("peak", non_negative), ("target", finite), ("range", non_negative),
                        ("profit", finite), ("direction", st.sampled_from(["Long", "Short", "ü", ""]))):
        if draw(st.booleans()):
            doc[key] = draw(values)
    return doc


@st.composite
def day_events(draw):
    stream = draw(st.sampled_from(sorted(STREAMS)))
    slots = CONFIG.sessions[STREAMS[stream]]
    chosen = draw(st.lists(st.sampled_from(slots), unique=True))
    date = draw(st.dates()).isoformat()
    doc = {"stream": stream, "date": date, "slots": {s: draw(outcomes()) for s in chosen}}
    return parse_day_event(doc, CONFIG)


@settings(max_examples=300, deadline=None)
@given(day_events())
def test_encode_decode_round_trip(event: DayEvent):
    data = encode_event(event)
    assert decode_event(data, CONFIG) == event
    # the JSON form of the same map decodes to the same event too
    assert decode_event(json.dumps(event.to_dict()).encode(), CONFIG) == event
    # and encoding is deterministic
    assert encode_event(decode_event(data, CONFIG)) == data


@settings(max_examples=50, deadline=None)
@given(day_events())
def test_decision_codec_round_trip(event: DayEvent):
    _, decision = apply_day(initial_state(event.stream, CONFIG), event, CONFIG)
    assert decode_decision(encode_decision(decision)) == decision


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_slots_come_out_in_session_order_whatever_order_records_give_them(data):
    """The order of a record's slot keys never shows in the event, also when the
    same key order comes again (the rules remember which orders are in order)."""
    from sequencer.domain.events import EventRules

    config = SequencerConfig()
    rules = EventRules(config)
    session_slots = list(config.sessions["S2"])
    for _ in range(3):
        chosen = data.draw(st.lists(st.sampled_from(session_slots), min_size=1, unique=True))
        given_order = data.draw(st.permutations(chosen))
        slots = {slot: SlotOutcome("Win", 1.0) for slot in given_order}
        for _ in range(2):
            event = rules.day_event("ES2", None, None, "2024-01-02", slots, None)
            assert list(event.slots) == [s for s in session_slots if s in chosen]
            assert event == parse_day_event({"stream": "ES2", "date": "2024-01-02",
                                             "slots": {s: {"result": "Win", "peak": 1.0} for s in given_order}},
                                            config)
