"""No record can stop the worker or a batch path (issue 13, points 1, 2, 5, 7).

Arbitrary and adversarial values (deep nesting, huge numbers, every msgpack
type, non-string keys, huge strings, random bytes) go through the worker's
`EventProcessor`, the log fold of `verify`/`rebuild`, and the file reader of
`replay`/`streamer publish`. Each record is folded or dead-lettered (rejected)
with a reason, nothing raises, whatever comes out encodes, and the good events
of the same batch are folded as if the bad one were not there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sequencer.app.codecs import (
    DEAD_LETTER_KEY_BYTES,
    decode_dead_letter,
    decode_payload,
    encode_dead_letter,
    encode_decision,
    encode_event,
)
from sequencer.domain import InvalidEvent, SequencerConfig, parse_day_event, state_to_dict
from sequencer.domain.events import latest_event_date
from sequencer.app.log_fold import LogFold
from sequencer.app.records import DeadLetter, SourceRecord
from sequencer.app.processor import EventProcessor
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events

from tests.support.recovery_helpers import comparable

CONFIG = SequencerConfig()
TOPIC = "events"
#: The issue's record: about 60 KB of JSON nested 30,000 deep (json.loads raised RecursionError).
DEEP_JSON = b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":' + b"[" * 30000 + b"]" * 30000 + b"}}"
TODAY = dt.date(2025, 6, 30)
LATEST = latest_event_date(TODAY)  # 2025-07-01


def good_event(stream: str, day: int) -> dict:
    date = (dt.date(2025, 1, 1) + dt.timedelta(days=day)).isoformat()
    slot = "07:30"
    return {"stream": stream, "date": date, "slots": {slot: {"result": "Win" if day % 3 else "Loss",
                                                            "peak": 5.0 + day, "direction": "Long"}}}


# --- hostile values -----------------------------------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),           # every msgpack integer
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50), st.binary(max_size=50),
    st.builds(msgpack.Timestamp, st.integers(0, 2**32), st.integers(0, 999_999_999)),
    st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=20)),
    st.sampled_from(["ES1", "ES1\n", "CL1", "../x", "2025-01-06", "2205-01-09", "07:30", "Win", "x" * 5000]),
)
hashable_keys = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**64 - 1), st.floats(allow_nan=False),
                          st.text(max_size=10), st.binary(max_size=10),
                          st.sampled_from(["stream", "date", "slots", "result", "peak", "07:30"]))
values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(hashable_keys, children, max_size=4)), max_leaves=20)


@st.composite
def near_valid(draw):
    """A valid event with one field (top level or in a slot) replaced by a hostile value."""
    doc = good_event(draw(st.sampled_from(["ES1", "CL1"])), draw(st.integers(0, 30)))
    where = draw(st.sampled_from(["stream", "date", "slots", "instrument", "session", "result", "peak",
                                  "range", "profit", "target", "direction", "slot key"]))
    value = draw(values)
    slot = doc["slots"]["07:30"]
    if where == "slot key":
        doc["slots"] = {value if _hashable(value) else str(value): slot}
    elif where in slot or where in ("range", "profit", "target"):
        slot[where] = value
    else:
        doc[where] = value
    return doc


def _hashable(value) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _msgpack(doc) -> bytes | None:
    try:
        return msgpack.packb(doc, use_bin_type=True, strict_types=False)
    except (TypeError, ValueError, OverflowError):
        return None


def _json(doc) -> bytes | None:
    try:
        return json.dumps(doc).encode()
    except (TypeError, ValueError, OverflowError):
        return None


ADVERSARIAL = [
    DEEP_JSON,
    b'{"stream":"ES1","date":"2025-01-06","slots":' + b'{"a":' * 5000 + b"1" + b"}" * 5001,
    b"\x91" * 100_000 + b"\x90",                                       # msgpack arrays 100,000 deep
    b"\xdf\xff\xff\xff\xff",                                             # a map claiming 4 billion entries
    b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":{"result":"Win","peak":' + b"9" * 4000 + b"}}}",
    b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":{"result":"Win","peak":1e999}}}',
    b'{"stream":"ES1","date":"2025-01-06","slots":{"07:30":{"result":"Win","direction":"\\ud800"}}}',
    b'{"stream":"ES1\\n","date":"2025-01-06","slots":{"07:30":{"result":"Win"}}}',
    b'{"stream":"ES1","date":"2205-01-09","slots":{"07:30":{"result":"Win"}}}',
    b"{" + b"x" * 60_000,
    b"",
]
adversarial_bytes = st.sampled_from(ADVERSARIAL)


@st.composite
def hostile_payloads(draw) -> bytes | None:
    kind = draw(st.sampled_from(["bytes", "adversarial", "msgpack", "json", "near msgpack", "near json", "none"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "adversarial":
        return draw(adversarial_bytes)
    if kind == "none":
        return None
    doc = draw(near_valid()) if kind.startswith("near") else draw(values)
    data = _msgpack(doc) if kind.endswith("msgpack") else _json(doc)
    return data if data is not None else draw(st.binary(max_size=50))


record_keys = st.one_of(st.none(), st.just(b"ES1"), st.just(b"CL1"), st.just(b"ES1\n"), st.binary(max_size=40),
                        st.just(b"k" * 5000))


def _records(hostile: list[tuple[bytes | None, bytes | None]]) -> list[SourceRecord]:
    """10 ES1 days, the hostile records, 10 CL1 days (the issue's batch), in one partition."""
    raw = [(b"ES1", msgpack.packb(good_event("ES1", d))) for d in range(10)] + hostile \
        + [(b"CL1", msgpack.packb(good_event("CL1", d))) for d in range(10)]
    return [SourceRecord(TOPIC, 0, offset, key, value) for offset, (key, value) in enumerate(raw)]


def _expected_good_states():
    events = [parse_day_event(good_event(s, d), CONFIG) for s in ("ES1", "CL1") for d in range(10)]
    return replay_events(events, CONFIG).states


def _assert_outputs_encode(outcome) -> None:
    for decision in outcome.decisions:
        encode_decision(decision)
    for event in outcome.last_events.values():
        encode_event(event)
    for state in outcome.states.values():
        json.dumps(state_to_dict(state), allow_nan=False)
    for letter in outcome.dead_letters:
        assert "unexpected error" not in letter.reason, letter.reason
        assert len(letter.reason) < 400 and "\n" not in letter.reason, letter.reason
        assert len(encode_dead_letter(letter)) < 20_000


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(record_keys, hostile_payloads()), min_size=1, max_size=5))
def test_processor_folds_or_dead_letters_every_hostile_record(hostile):
    records = _records(hostile)
    processor = EventProcessor(CONFIG, lambda stream: None, latest_date=lambda: LATEST)
    outcome = processor.process(records)
    _assert_outputs_encode(outcome)
    counters = processor.counters
    assert counters.records == len(records)
    assert counters.applied + counters.duplicates + counters.redelivered + counters.dead_letters == len(records)
    # The good events around the hostile ones are folded exactly as without them, unless a hostile
    # record was itself a valid day of ES1/CL1 (then that stream has other days, or a good day
    # became a duplicate of it).
    expected = _expected_good_states()
    valid_streams = set()
    for record in records[10:-10]:
        try:
            valid_streams.add(processor.decode(record, LATEST).stream)
        except InvalidEvent:
            pass
    for stream in ("ES1", "CL1"):
        if stream not in valid_streams:
            assert sum(d.stream == stream for d in outcome.decisions) == 10
            assert comparable(outcome.states[stream]) == comparable(expected[stream])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(record_keys, hostile_payloads()), min_size=1, max_size=5))
def test_log_fold_of_verify_and_rebuild_counts_hostile_records(hostile):
    records = _records(hostile)
    for as_of in (None, "2025-01-05"):
        fold = LogFold(CONFIG, TOPIC, max_event_bytes=64 * 1024, as_of=as_of)
        fold.feed(records)
        counters = fold.processor.counters
        assert counters.records + fold.after_as_of == len(records)
        assert counters.dead_letters == sum(fold.dead_letter_reasons.values())
        assert counters.applied + counters.duplicates + counters.dead_letters == counters.records


def test_the_issue_record_is_dead_lettered_and_its_batch_folds():
    """The exact bytes of issue 13 point 1, between 10 ES1 days and 10 CL1 days."""
    processor = EventProcessor(CONFIG, lambda stream: None, latest_date=lambda: LATEST)
    outcome = processor.process(_records([(b"ES1", DEEP_JSON)]))
    assert [letter.reason for letter in outcome.dead_letters] == ["malformed JSON: nested deeper than 16 levels"]
    expected = _expected_good_states()
    for stream in ("ES1", "CL1"):
        assert outcome.states[stream].events_applied == 10
        assert outcome.states[stream].last_processed_date == expected[stream].last_processed_date
        assert outcome.states[stream].rolling_median_window == expected[stream].rolling_median_window


@pytest.mark.parametrize("data", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_bytes_raise_only_invalid_event(data):
    with pytest.raises(InvalidEvent):
        parse_day_event(decode_payload(data, 100_000), CONFIG, LATEST)


# --- dead letters always fit ----------------------------------------------------------------

def test_dead_letter_of_a_huge_value_is_cut_with_its_length_and_sha256():
    value = b"\x81\xa6stream" + b"x" * 2_000_000
    key = b"k" * 5000
    letter = DeadLetter(SourceRecord(TOPIC, 3, 77, key, value), "event of 2000008 bytes exceeds the limit")
    wire = encode_dead_letter(letter, max_value_bytes=1000)
    assert len(wire) < 3000
    doc = decode_dead_letter(wire)
    assert doc["value"] == value[:1000]
    assert doc["value_length"] == len(value)
    assert doc["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert doc["value_truncated"] is True
    assert doc["key"] == key[:DEAD_LETTER_KEY_BYTES] and doc["key_truncated"] is True
    assert doc["key_length"] == 5000
    assert (doc["source_topic"], doc["source_partition"], doc["source_offset"]) == (TOPIC, 3, 77)


def test_dead_letter_of_a_small_value_carries_it_whole():
    letter = DeadLetter(SourceRecord(TOPIC, 0, 1, None, b"\xc1"), "malformed msgpack")
    doc = decode_dead_letter(encode_dead_letter(letter))
    assert doc["value"] == b"\xc1" and doc["value_truncated"] is False and doc["value_length"] == 1
    assert doc["key"] is None and doc["key_truncated"] is False


@settings(max_examples=200, deadline=None)
@given(key=st.one_of(st.none(), st.binary(max_size=3000)), value=st.one_of(st.none(), st.binary(max_size=3000)),
       limit=st.integers(1, 2000))
def test_dead_letter_codec_cuts_and_describes_any_bytes(key, value, limit):
    letter = DeadLetter(SourceRecord(TOPIC, 1, 2, key, value), "some reason", "ES1")
    doc = decode_dead_letter(encode_dead_letter(letter, max_value_bytes=limit))
    for name, data, cut in (("key", key, DEAD_LETTER_KEY_BYTES), ("value", value, limit)):
        if data is None:
            assert doc[name] is None and doc[f"{name}_length"] is None and doc[f"{name}_truncated"] is False
            continue
        assert doc[name] == data[:cut]
        assert doc[f"{name}_length"] == len(data)
        assert doc[f"{name}_truncated"] is (len(data) > cut)
        assert doc[f"{name}_sha256"] == hashlib.sha256(data).hexdigest()
    assert (doc["reason"], doc["stream"]) == ("some reason", "ES1")


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children,
                                                                              max_size=3)),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_nesting_is_the_depth_of_the_document(value):
    """Brackets inside strings (st.text draws them, escaped quotes too) do not count."""
    from sequencer.app.codecs import json_nesting

    assert json_nesting(json.dumps(value).encode()) == _depth(value)
    assert json_nesting(json.dumps(value, ensure_ascii=False).encode()) == _depth(value)


# --- names and dates ----------------------------------------------------------------------

@pytest.mark.parametrize("stream", ["ES1\n", "ES1\r\n", "ES\n1", "\nES1", "ES1 "])
def test_a_stream_name_must_match_as_a_whole(stream):
    with pytest.raises(InvalidEvent, match="stream"):
        parse_day_event({**good_event("ES1", 5), "stream": stream}, CONFIG)


def test_a_day_after_today_plus_one_day_of_grace_is_in_the_future():
    assert LATEST == "2025-07-01"
    parse_day_event({**good_event("ES1", 0), "date": "2025-07-01"}, CONFIG, LATEST)   # the day of grace
    with pytest.raises(InvalidEvent, match="2025-07-02 is in the future"):
        parse_day_event({**good_event("ES1", 0), "date": "2025-07-02"}, CONFIG, LATEST)


def test_the_worker_dead_letters_a_future_day_and_the_stream_goes_on():
    records = [SourceRecord(TOPIC, 0, 0, b"ES1", msgpack.packb({**good_event("ES1", 0), "date": "2205-01-09"})),
               SourceRecord(TOPIC, 0, 1, b"ES1", msgpack.packb(good_event("ES1", 3)))]
    processor = EventProcessor(CONFIG, lambda stream: None, latest_date=lambda: LATEST)
    outcome = processor.process(records)
    assert len(outcome.dead_letters) == 1 and "in the future" in outcome.dead_letters[0].reason
    assert outcome.states["ES1"].last_processed_date == "2025-01-04"


# --- files: replay and streamer publish read them -----------------------------------------

jsonl_lines = st.one_of(
    hostile_payloads().map(lambda b: (b or b"").replace(b"\n", b" ").replace(b"\r", b" ")),
    near_valid().map(lambda doc: _json(doc) or b"{}"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(st.lists(jsonl_lines, min_size=1, max_size=6))
def test_file_reader_rejects_every_hostile_line_and_keeps_the_good_ones(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("jsonl") / "events.jsonl"
    good = [json.dumps(good_event("CL1", 40 + d)).encode() for d in range(3)]
    path.write_bytes(b"\n".join(good + lines) + b"\n")
    batch = read_day_events([path], CONFIG, latest_date=LATEST)
    for event in batch.events:
        encode_event(event)
    assert {("CL1", (dt.date(2025, 1, 1) + dt.timedelta(days=40 + d)).isoformat()) for d in range(3)} <= {
        (e.stream, e.date) for e in batch.events}
    for reject in batch.rejects:
        assert reject.line is not None and reject.source == str(path)
        assert "\n" not in reject.reason and len(reject.reason) < 400


def test_a_non_utf8_byte_costs_its_csv_row_only(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_bytes(b"Date,Time,Stream,Result,Peak,Direction\n"
                     b"2025-01-02,07:30,ES1,Win,12,Long\n"
                     b"2025-01-03,07:30,ES1,Win,12,Lo\xffng\n"
                     b"2025-01-06,07:30,ES\xe91,Win,12,Long\n"
                     b"2025-01-07,07:30,ES1,Loss,3,Long\n")
    batch = read_day_events([path], CONFIG, latest_date=LATEST)
    assert [e.date for e in batch.events] == ["2025-01-02", "2025-01-07"]
    assert [(r.line, r.reason) for r in batch.rejects] == [
        (3, "not UTF-8: byte 0xff at character 31"), (4, "not UTF-8: byte 0xe9 at character 20")]


def test_a_future_row_is_rejected_in_a_file(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text("Date,Time,Stream,Result,Peak\n2025-01-02,07:30,ES1,Win,12\n2205-01-09,07:30,ES1,Win,12\n")
    batch = read_day_events([path], CONFIG, latest_date=LATEST)
    assert [e.date for e in batch.events] == ["2025-01-02"]
    assert len(batch.rejects) == 1 and "2205-01-09 is in the future" in batch.rejects[0].reason
    assert batch.rejects[0].line == 3


def test_a_quoted_stream_with_a_newline_is_rejected_in_a_csv(tmp_path):
    path = tmp_path / "trades.csv"
    path.write_text('Date,Time,Stream,Result,Peak\n2025-01-02,07:30,"ES1\n",Win,12\n2025-01-03,07:30,ES1,Win,12\n')
    batch = read_day_events([path], CONFIG, latest_date=LATEST)
    assert [(e.stream, e.date) for e in batch.events] == [("ES1", "2025-01-03")]
    assert "stream name" in batch.rejects[0].reason


@pytest.mark.parametrize("field, value", [("instrument", ["ES"]), ("session", []), ("instrument", {"a": 1}),
                                          ("session", 1)])
def test_a_json_lines_row_with_a_non_string_instrument_or_session_is_rejected_not_raised(tmp_path, field, value):
    # A list or map here once reached a set lookup and raised TypeError, ending the whole replay.
    row = {"stream": "ES1", "instrument": "ES", "session": "S1", "date": "2025-01-02"}
    row[field] = value
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    batch = read_day_events([path], SequencerConfig())
    assert batch.events == []
    assert [(r.line, r.reason) for r in batch.rejects] == [
        (1, f"{field} must be a string, got {value!r}")]
