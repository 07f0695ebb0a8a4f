"""The typed codecs of decisions, dead letters and stream states against what they replaced.

- Decisions and dead letters are written by msgspec: the bytes must be those
  ``msgpack.Packer(use_bin_type=True)`` packed of the same map, on arbitrary values
  (int vs float, -0.0, NaN, None, unicode, big ints, empty and large slot_sums),
  and a value neither can write must fail in both.
- They are read by msgspec: on arbitrary maps and bytes, a record is accepted as the
  same decision (values and types) or refused with the same error as before
  (``msgpack.unpackb`` + ``Decision.from_dict``); the one new refusal is a field of
  the wrong type, checked here by an independent table of the field types.
- Stream states (table values and checkpoint files) are read by a msgspec schema
  and the domain's rules; ``tests/support/frozen_state_validation.py`` is the
  validation as it was. On valid, nearly valid, older-layout, broken and hostile
  documents the new decoders give the same state or the same reason, word for
  word; where the old path crashed (a RecursionError, an OverflowError), the new
  one refuses cleanly.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import tempfile
from pathlib import Path
from types import MappingProxyType

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sequencer.adapters.files import checkpoints as checkpoints_module
from sequencer.adapters.files.checkpoints import CheckpointError, CheckpointStore
from sequencer.app import codecs
from sequencer.app.codecs import (
    decode_dead_letter,
    decode_decision,
    decode_state,
    encode_dead_letter,
    encode_decision,
    encode_state,
)
from sequencer.app.records import DeadLetter, SourceRecord
from sequencer.domain import DECISION_FIELDS, Decision, InvalidState, SequencerConfig, SequencerError, state_to_dict

from tests.support import frozen_state_validation as frozen
from tests.support.repeated_keys import repeats_a_key

CONFIG = SequencerConfig()
OLD_PACKER = msgpack.Packer(use_bin_type=True)

# --- values ------------------------------------------------------------------------------

class _Float(float):
    """A float subclass, as ``numpy.float64`` is: msgpack wrote it as a float."""


class _Text(str):
    """A str subclass: msgpack wrote it as a string."""


ints = st.one_of(st.integers(-(2**63), 2**64 - 1), st.integers(-1000, 1000),
                 st.sampled_from([2**64, -(2**63) - 1, 10**30, 0, -1, 127, 128, -32, -33, 2**31, 2**32]))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1e6),
                   st.sampled_from([-0.0, 0.0, 1e16, 1e-05, 5e-324, 1.7976931348623157e308, 2.5]))
numbers = st.one_of(ints, floats)
texts = st.one_of(st.text(max_size=12), st.sampled_from(["", "ES1", "07:30", "ünïcödé ✓", "\ud800", "x" * 300]))
hostile = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, texts, st.binary(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=6), st.integers(0, 9)), inner, max_size=3)),
    max_leaves=8,
)


def _same(a, b) -> bool:
    # NaN never equals itself: compare the reprs then.
    return a == b or repr(a) == repr(b)


# --- decisions -----------------------------------------------------------------------------

NONE = type(None)
#: Each decision field's wire types, written out here (not taken from the codec's schema).
DECISION_TYPES = {
    "stream": (str,), "instrument": (str,), "date": (str,), "traded_slot": (str,),
    "result": (str, NONE), "peak": (int, float, NONE), "slot_sums": (dict,), "time_change": (bool,),
    "next_slot": (str,), "rolling_median": (int, float, NONE), "rolling_median_target": (int, float),
    "median_ladder_target": (int, float), "ladder_step": (int,), "days_at_level": (int,),
    "next_target": (int, float), "no_trade_next": (bool,), "time_reason": (str,), "target_reason": (str,),
    "traded": (bool,), "profit": (int, float), "profit_usd": (int, float),
}
assert tuple(DECISION_TYPES) == DECISION_FIELDS


def well_typed(name, value) -> bool:
    if type(value) not in DECISION_TYPES[name]:  # exact types: a bool is not an int here
        return False
    if name == "slot_sums":
        return all(type(k) is str and type(v) is int for k, v in value.items())
    return True


def _value_of(name: str):
    kinds = DECISION_TYPES[name]
    options = []
    if str in kinds:
        options.append(st.one_of(texts, texts.map(_Text)))
    if int in kinds:
        options.append(ints)
    if float in kinds:
        options.append(st.one_of(floats, floats.map(_Float)))
    if bool in kinds:
        options.append(st.booleans())
    if NONE in kinds:
        options.append(st.none())
    if dict in kinds:
        options.append(st.one_of(
            st.dictionaries(texts, ints, max_size=4),
            st.dictionaries(st.text(max_size=6), st.integers(-26, 13), min_size=100, max_size=300),
            st.just({})).map(lambda d: MappingProxyType(d) if len(d) % 2 else d))
    return st.one_of(*options)


typed_decisions = st.builds(Decision, *[_value_of(name) for name in DECISION_FIELDS])


def _outcome(run):
    try:
        return ("ok", run())
    except Exception as error:  # noqa: BLE001 - which error is what is compared
        return ("error", type(error).__name__, str(error))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(typed_decisions, typed_decisions.flatmap(
    lambda d: st.sampled_from(DECISION_FIELDS).flatmap(
        lambda name: hostile.map(lambda v: d._replace(**{name: v}))))))
@example(Decision(*["x"] * 6, {}, *["x"] * 14))
def test_encode_decision_writes_the_bytes_msgpack_packed(decision):
    """Any decision (and one with any field of any value): the same bytes, or both fail."""
    old = _outcome(lambda: OLD_PACKER.pack(decision.to_dict()))
    new = _outcome(lambda: encode_decision(decision))
    assert new[0] == old[0]
    if old[0] == "ok":
        assert new[1] == old[1]
    else:
        assert new[1] == old[1], (old, new)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed_decisions)
def test_a_decision_comes_back_with_its_values_and_their_types(decision):
    try:
        data = encode_decision(decision)
    except (OverflowError, UnicodeEncodeError):
        return  # not writable (an int beyond 64 bits, a lone surrogate): tested above
    back = decode_decision(data)
    assert type(back) is Decision and isinstance(back.slot_sums, MappingProxyType)
    written_as = {_Float: float, _Text: str}  # a subclass comes back as what it was written as
    assert [type(v) for v in back] == [written_as.get(type(v), type(v)) if n != "slot_sums" else MappingProxyType
                                       for n, v in zip(DECISION_FIELDS, decision)]
    assert dict(back.slot_sums) == dict(decision.slot_sums)
    assert _same(back._replace(slot_sums=None), decision._replace(slot_sums=None))
    assert encode_decision(back) == data


@st.composite
def decision_maps(draw):
    """A decision map with 0-3 fields removed, replaced by any value, or added."""
    doc = draw(typed_decisions).to_dict()
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.integers(0, 3))
        name = draw(st.sampled_from(DECISION_FIELDS))
        if action == 0:
            doc.pop(name, None)
        elif action == 1:
            doc[name] = draw(hostile)
        elif action == 2:
            doc[draw(st.one_of(st.text(max_size=6), st.integers(0, 3)))] = draw(hostile)
        else:
            for trade_field in ("traded", "profit", "profit_usd"):
                doc.pop(trade_field, None)
    return doc if draw(st.integers(0, 19)) else draw(hostile)


@st.composite
def decision_bytes(draw):
    doc = draw(decision_maps())
    try:
        data = msgpack.packb(doc, use_bin_type=True)
    except (OverflowError, UnicodeEncodeError, ValueError):
        data = draw(st.binary(max_size=40))
    return draw(damaged(data, [b"\xc1", b"\x00"]))


@st.composite
def damaged(draw, data: bytes, tails: list[bytes]):
    """``data`` as it is (three times in four), truncated, with one byte changed, with one
    of ``tails`` added, or replaced by random bytes."""
    damage = draw(st.sampled_from([None] * 12 + [0, 1, 2, 3]))
    if damage == 0 and len(data) > 1:
        data = data[:draw(st.integers(1, len(data) - 1))]
    elif damage == 1 and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    elif damage == 2:
        data = data + draw(st.sampled_from(tails))
    elif damage == 3:
        data = draw(st.binary(max_size=60))
    return data


def _decision_outcome(run):
    outcome = _outcome(run)
    if outcome[0] == "ok":
        decision = outcome[1]
        return ("ok", tuple(decision), tuple(map(type, decision)))
    return outcome


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(decision_bytes())
@example(msgpack.packb({name: "x" for name in DECISION_FIELDS[:-3]}))  # before trades were recorded
@example(b"\xc1")
def test_decode_decision_accepts_and_refuses_as_before_and_refuses_wrong_types(data):
    old = _decision_outcome(lambda: Decision.from_dict(msgpack.unpackb(data, raw=False)))
    new = _decision_outcome(lambda: decode_decision(data))
    if old[0] == "ok":
        doc = msgpack.unpackb(data, raw=False)
        if all(well_typed(name, doc[name]) for name in DECISION_FIELDS):
            assert new[0] == "ok" and _same(new[1], old[1]) and new[2] == old[2]
        else:
            assert new[:2] == ("error", "SequencerError") and "wrong type" in new[2], new
    else:
        assert new == old


def test_a_decision_written_before_trades_is_refused_as_before():
    doc = {name: "x" for name in DECISION_FIELDS if name not in ("traded", "profit", "profit_usd")}
    with pytest.raises(SequencerError, match="written before trades were recorded"):
        decode_decision(msgpack.packb(doc))
    with pytest.raises(SequencerError, match="decision lacks fields: stream"):
        decode_decision(msgpack.packb({k: v for k, v in doc.items() if k != "stream"}))


def test_a_decision_with_a_field_of_the_wrong_type_is_refused_naming_it():
    good = Decision("ES1", "ES", "2025-01-06", "07:30", "Win", 12, {"07:30": 1}, False, "07:30", None,
                    10.0, 10.0, 0, 1, 10.0, False, "stay", "warm-up", True, 12, 600)
    doc = good.to_dict() | {"ladder_step": "3"}
    with pytest.raises(SequencerError, match=r"wrong type.*ladder_step"):
        decode_decision(msgpack.packb(doc))
    assert decode_decision(msgpack.packb(good.to_dict() | {"extra": 1})) == good  # unknown keys: ignored, as before


# --- dead letters --------------------------------------------------------------------------

def _old_dead_letter_bytes(letter: DeadLetter, limit: int) -> bytes:
    """The map the old encoder packed, built here from the record by hand."""
    def cut(name, data, most):
        if data is None:
            return {name: None, f"{name}_length": None, f"{name}_sha256": None, f"{name}_truncated": False}
        return {name: data[:most], f"{name}_length": len(data),
                f"{name}_sha256": hashlib.sha256(data).hexdigest(), f"{name}_truncated": len(data) > most}
    record = letter.record
    return msgpack.packb({"reason": letter.reason, "stream": letter.stream, "source_topic": record.topic,
                          "source_partition": record.partition, "source_offset": record.offset,
                          **cut("key", record.key, 1024), **cut("value", record.value, limit)},
                         use_bin_type=True)


letters = st.builds(
    DeadLetter,
    st.builds(SourceRecord, texts, st.integers(0, 2**31), st.integers(0, 2**63 - 1),
              st.one_of(st.none(), st.binary(max_size=1500)), st.one_of(st.none(), st.binary(max_size=3000))),
    texts, st.one_of(st.none(), texts))


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(letters, st.integers(1, 2000))
def test_dead_letters_keep_their_bytes_and_decode_as_unpackb(letter, limit):
    old = _outcome(lambda: _old_dead_letter_bytes(letter, limit))
    new = _outcome(lambda: encode_dead_letter(letter, max_value_bytes=limit))
    assert new == old
    if new[0] == "ok":
        assert decode_dead_letter(new[1]) == msgpack.unpackb(new[1], raw=False)


def _packed_or_junk(value) -> bytes:
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (OverflowError, UnicodeEncodeError, ValueError):  # beyond msgpack: not a record anyone wrote
        return b"\xc1"


@settings(max_examples=800, deadline=None)
@given(st.one_of(hostile.map(lambda v: _packed_or_junk(v)), st.binary(max_size=60)))
def test_anything_else_on_the_dead_letter_topic_decodes_as_unpackb(data):
    assert _same(_outcome(lambda: decode_dead_letter(data)), _outcome(lambda: msgpack.unpackb(data, raw=False)))


# --- stream states -------------------------------------------------------------------------

STREAMS = {"ES1": "S1", "NQ2": "S2", "CL1": "S1", "GC2": "S2"}
peaks = st.one_of(st.floats(0, 1e6), st.integers(0, 10**6), st.sampled_from([0, -0.0, 1e-05, 2.5, 1e16]))
dates = st.one_of(st.dates().map(str), st.sampled_from(["2025-01-15T00:00:00", "2025-1-5", "", "2025-02-30"]))


@st.composite
def state_docs(draw):
    """A valid SPEC 4 document (every spelling the rules accept: 7:30, timestamps, ints for floats)."""
    stream = draw(st.sampled_from(sorted(STREAMS)))
    session = STREAMS[stream]
    slots = CONFIG.sessions[session]
    depth = st.integers(0, CONFIG.depth)
    window = draw(st.lists(peaks, max_size=CONFIG.depth))
    doc = {
        "schema_version": 1, "stream": stream, "instrument": stream[:2], "session": session,
        "config_id": CONFIG.config_id,
        "saved_at": draw(st.sampled_from(["2025-01-16T08:00:00+00:00", "x"])),
        "last_processed_date": draw(st.one_of(st.none(), st.dates().map(str),
                                              st.just("2025-01-15T00:00:00"))),
        "events_applied": draw(st.integers(0, 10**6)),
        "rolling_median_window": window,
        "median_ladder_window": window if draw(st.booleans()) else draw(st.lists(peaks, max_size=CONFIG.depth)),
        "time_slot_histories": {
            (slot.lstrip("0") if draw(st.integers(0, 9)) == 0 else slot):
                draw(st.lists(st.sampled_from([1, 0, -2]), max_size=CONFIG.depth)) for slot in slots},
        "current_time": draw(st.sampled_from(slots)),
        "current_target": draw(peaks), "rolling_median_target": draw(peaks), "median_ladder_target": draw(peaks),
        "median_ladder_current_step": draw(depth), "median_ladder_days_at_level": draw(depth),
        "no_trade_next": draw(st.booleans()),
        "source_offsets": draw(st.dictionaries(st.sampled_from(["events:0", "events:1", "x"]),
                                               st.integers(0, 2**40), max_size=2)),
    }
    for optional in ("saved_at", "source_offsets"):
        if not draw(st.integers(0, 3)):
            del doc[optional]
    return doc


@st.composite
def legacy_docs(draw):
    """The seed's older layout (SPEC 7): no schema_version, session, config_id, ..."""
    doc = draw(state_docs())
    for key in ("schema_version", "session", "config_id", "events_applied", "no_trade_next", "source_offsets"):
        doc.pop(key, None)
    for key in ("median_ladder_window", "rolling_median_target", "median_ladder_target",
                "median_ladder_current_step", "median_ladder_days_at_level"):
        if draw(st.booleans()):
            doc.pop(key, None)
    if draw(st.booleans()):
        doc["time_slot_histories"]["12:00"] = [1]
    return doc


state_values = st.one_of(hostile, peaks, dates, st.sampled_from(
    [1.0, 3.0, True, 1, -1, 14, 10**400, 10**30, "S1", "S3", "ES1", "07:30", "7:30", "12:00", "x",
     [1, 0], [-2.0, 1.0], [1, True], list(range(20)), {"07:30": [1]}, {}, []]).map(copy.deepcopy))


@st.composite
def near_state_docs(draw):
    """A valid (or older-layout) document with 0-3 faults, in the document, a window, a history."""
    doc = draw(st.one_of(state_docs(), state_docs(), legacy_docs()))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.integers(0, 4))
        keys = sorted(doc)
        if action == 0 and keys:
            doc[draw(st.sampled_from(keys))] = draw(state_values)
        elif action == 1 and keys:
            del doc[draw(st.sampled_from(keys))]
        elif action == 2:
            doc[draw(st.sampled_from(["extra", "schema_version", "saved_at", "session", "config_id"]))] = \
                draw(state_values)
        elif action == 3 and isinstance(doc.get("rolling_median_window"), list):
            window = doc["rolling_median_window"]
            window.insert(draw(st.integers(0, len(window))), draw(state_values))
        elif isinstance(doc.get("time_slot_histories"), dict):
            histories = doc["time_slot_histories"]
            histories[draw(st.sampled_from(["07:30", "08:00", "09:30", "12:00", "1"]))] = draw(state_values)
    return doc if draw(st.integers(0, 29)) else draw(hostile)


@st.composite
def state_bytes(draw):
    """JSON of a document, sometimes damaged; or random bytes; with NaN/Infinity as json writes them."""
    doc = draw(near_state_docs())
    try:
        data = json.dumps(doc, indent=draw(st.sampled_from([None, 2]))).encode()
    except (TypeError, ValueError):  # bytes, a lone surrogate: json cannot write those
        data = draw(st.binary(max_size=60))
    return draw(damaged(data, [b"x", b" ", b"\n", b"}", b"\xff"]))


def _valid_text(**changes) -> bytes:
    doc = {"schema_version": 1, "stream": "ES1", "instrument": "ES", "session": "S1",
           "config_id": CONFIG.config_id, "last_processed_date": "2025-01-15", "events_applied": 3,
           "rolling_median_window": [1.5, 2], "median_ladder_window": [1.5, 2],
           "time_slot_histories": {"07:30": [1], "08:00": [], "09:00": [0]}, "current_time": "07:30",
           "current_target": 10.0, "rolling_median_target": 10.0, "median_ladder_target": 10.0,
           "median_ladder_current_step": 0, "median_ladder_days_at_level": 2, "no_trade_next": False}
    text = json.dumps(doc)
    for key, raw in changes.items():
        text = text.replace(f'"{key}": {json.dumps(doc[key])}', f'"{key}": {raw}', 1)
    return text.encode()


HOSTILE_STATES = [
    _valid_text(rolling_median_window="[NaN]"), _valid_text(current_target="Infinity"),
    _valid_text(current_target="-Infinity"), _valid_text(rolling_median_window="[1e400]"),
    _valid_text(rolling_median_window="[" + "9" * 400 + "]"),        # an int beyond any float
    _valid_text(events_applied="9" * 400), _valid_text(events_applied="9" * 4300),
    _valid_text(events_applied="9" * 4301), _valid_text(events_applied="3.0"),
    _valid_text(rolling_median_window="[" + "[" * 100_000 + "]" * 100_000 + "]"),
    _valid_text(rolling_median_window="[" + "[" * 900 + "]" * 900 + "]"),
    _valid_text(time_slot_histories='{"07:30": [1], "08:00": [], "09:00": [0], "07:30": [true]}'),
    _valid_text(time_slot_histories='{"07:30": [1.0], "8:00": [], "09:00": [0]}'),
    _valid_text(current_time='"\\ud800"'), _valid_text(current_time='"7:30"'),
    _valid_text(stream='"ES1", "stream": "NQ1"'), _valid_text(no_trade_next="0"),
    b"{1: 2}", b"[" * 100_000, b"\xef\xbb\xbf" + _valid_text(), b"\xef\xbb", b"", b"  \n",
    _valid_text() + b"\xff", _valid_text().replace(b'"ES1"', b'"ES\xff1"'),
]


def _state_outcome(run):
    try:
        state = run()
    except ValueError as error:  # InvalidState, json's JSONDecodeError
        return ("refused", type(error).__name__, str(error))
    except Exception as error:  # noqa: BLE001 - the old path crashed
        return ("crashed", type(error).__name__)
    return ("state", state, json.dumps(state_to_dict(state)))  # the JSON tells 1 from 1.0, -0.0 from 0.0


def _assert_same_or_better(new, old):
    assert new[0] != "crashed", new
    if old[0] == "crashed":  # RecursionError or OverflowError escaped before: now a refusal
        assert new[:2] == ("refused", "InvalidState"), (new, old)
    else:
        assert _same(new, old), (new, old)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state_bytes())
def test_decode_state_accepts_and_refuses_as_the_old_validation(data):
    _assert_same_or_better(_state_outcome(lambda: decode_state(data, CONFIG)),
                           _state_outcome(lambda: frozen.decode_state(data, CONFIG)))


@pytest.mark.parametrize("data", HOSTILE_STATES, ids=range(len(HOSTILE_STATES)))
def test_hostile_state_values_are_refused_as_before_or_cleanly(data):
    _assert_same_or_better(_state_outcome(lambda: decode_state(data, CONFIG)),
                           _state_outcome(lambda: frozen.decode_state(data, CONFIG)))


def test_what_the_old_path_let_escape_is_now_a_refusal():
    with pytest.raises(InvalidState, match="nested too deep"):
        decode_state(_valid_text(rolling_median_window="[" + "[" * 100_000 + "]" * 100_000 + "]"), CONFIG)
    with pytest.raises(InvalidState, match=r"rolling_median_window\[0\] must be a finite peak >= 0"):
        decode_state(_valid_text(rolling_median_window="[" + "9" * 400 + "]"), CONFIG)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(state_docs())
def test_valid_states_take_the_typed_path(doc):
    """A valid current-layout document is read by the schema and the rules, never the fallback."""
    data = json.dumps(doc).encode()
    expected = _state_outcome(lambda: frozen.decode_state(data, CONFIG))
    assert expected[0] == "state"
    original = codecs.state_from_dict
    codecs.state_from_dict = None  # a fallback would fail here
    try:
        assert _same(_state_outcome(lambda: decode_state(data, CONFIG)), expected)
    finally:
        codecs.state_from_dict = original
    state = expected[1]
    assert decode_state(encode_state(state), CONFIG) == state and encode_state(decode_state(encode_state(state),
                                                                                            CONFIG)) == encode_state(state)


# --- checkpoint files ----------------------------------------------------------------------

def _old_checkpoint_outcome(data: bytes):
    """``CheckpointStore.load_file`` as it was, after reading the file: its problem or its result."""
    with tempfile.NamedTemporaryFile(suffix=".json") as handle:  # read as the old loader read it
        handle.write(data)
        handle.flush()
        try:
            text = Path(handle.name).read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            return ("refused", f"unreadable: {error}")
    if not text.strip():
        return ("refused", "empty file (truncated?)")
    try:
        json.loads(text)
    except RecursionError:
        return ("crashed",)
    except ValueError as error:
        try:
            problem = "truncated JSON" if checkpoints_module._looks_truncated(error, text) else "not valid JSON"
        except AttributeError:  # a ValueError that is no JSONDecodeError (an int of 4,301 digits)
            return ("crashed",)
        return ("refused", f"{problem}: {error}")
    try:
        state, warnings, saved_at, legacy = frozen.load_checkpoint_text(text, CONFIG)
    except InvalidState as error:
        return ("refused", str(error))
    except Exception:  # noqa: BLE001
        return ("crashed",)
    return ("loaded", state, json.dumps(state_to_dict(state)), warnings, saved_at, legacy)


def _new_checkpoint_outcome(store: CheckpointStore, path: Path, caplog_records: list):
    try:
        checkpoint = store.load_file(path)
    except CheckpointError as error:
        return ("refused", error.problem)
    state = checkpoint.state
    warnings = [r.args[1] for r in caplog_records if r.levelname == "WARNING"]
    return ("loaded", state, json.dumps(state_to_dict(state)), warnings, checkpoint.saved_at,
            checkpoint.upgraded_from_legacy)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(state_bytes(), st.sampled_from(HOSTILE_STATES)))
def test_checkpoint_files_load_as_before(data):
    """Same state, saved_at, legacy flag and upgrade warnings, or the same problem (or, where
    the old loader crashed, a clean refusal)."""
    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.records = []

        def emit(self, record):
            self.records.append(record)

    keep = Keep()
    logger = logging.getLogger(checkpoints_module.__name__)
    logger.addHandler(keep)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "some checkpoint.json"  # no name check: not a checkpoint file name
            path.write_bytes(data)
            new = _new_checkpoint_outcome(CheckpointStore(Path(folder), CONFIG), path, keep.records)
    finally:
        logger.removeHandler(keep)
        logger.setLevel(level)
    old = _old_checkpoint_outcome(data)
    if new[0] == "refused" and "is given twice" in new[1]:
        # The one change: a key twice was loaded as its last value (or refused for a later fault).
        assert repeats_a_key(data), (new, old)
    elif old[0] == "crashed":
        assert new[0] == "refused", new
    else:
        assert _same(new, old), (new, old)


def test_a_valid_checkpoint_file_is_read_without_the_generic_path(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoints_module, "load_state_document", None)  # a fallback would fail
    path = tmp_path / "state_ES_ES1.json"
    path.write_bytes(b"\xef\xbb\xbf" + _valid_text())
    checkpoint = CheckpointStore(tmp_path, CONFIG).load_file(path)
    assert checkpoint.state.rolling_median_window == (1.5, 2) and type(checkpoint.state.rolling_median_window[1]) is int
    assert checkpoint.saved_at is None and checkpoint.upgraded_from_legacy is False


def test_a_hostile_checkpoint_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "state_ES_ES1.json"
    path.write_bytes(_valid_text(rolling_median_window="[" + "[" * 100_000 + "]" * 100_000 + "]"))
    with pytest.raises(CheckpointError, match="nested too deep") as info:
        CheckpointStore(tmp_path, CONFIG).load_file(path)
    assert str(path) in str(info.value)
