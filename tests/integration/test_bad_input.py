"""Bad input over Kafka: a running worker dead-letters each bad record with a
specific reason and where it came from, keeps running, and still applies the
valid event published after them. Corrupt checkpoint files are refused by name
and the worker falls back to the table or the log.

One worker serves the dead-letter cases (module fixture); each case is its own
test reading its own dead letter, found by its source offset.
"""

from __future__ import annotations

import hashlib
import json

import msgpack
import pytest

from sequencer.app.codecs import DEFAULT_DEAD_LETTER_VALUE_BYTES
from sequencer.domain import SequencerConfig, state_to_dict
from sequencer.adapters.files.sources import read_day_events

from tests.support.recovery_helpers import SAMPLE, Setup, comparable, replay

pytestmark = pytest.mark.broker

MAX_EVENT_BYTES = 4096


def _event(**changes) -> dict:
    doc = {"stream": "ES1", "instrument": "ES", "session": "S1", "date": "2025-01-03",
           "slots": {"07:30": {"result": "Win", "peak": 12.0}, "08:00": {"result": "Loss", "peak": 3.0}}}
    doc.update(changes)
    return doc


def _pack(doc) -> bytes:
    return msgpack.packb(doc, use_bin_type=True)


GOOD_FIRST = _event()                                  # applied: ES1 2025-01-03
# (case id, key, value bytes, words the reason must contain)
BAD = [
    ("malformed-msgpack", b"ES1", b"\xc1\xff\x00", ["malformed msgpack"]),
    ("malformed-json", b"ES1", b'{"stream": "ES1", ', ["malformed JSON"]),
    ("missing-fields", b"ES1", _pack({"stream": "ES1", "instrument": "ES", "session": "S1"}), ["date"]),
    ("missing-slots", b"ES1", _pack({k: v for k, v in _event(date="2025-01-04").items() if k != "slots"}), ["slots"]),
    ("unknown-instrument", b"ZZ1", _pack(_event(stream="ZZ1", instrument="ZZ")), ["unknown instrument", "ZZ"]),
    ("unknown-session", b"ES3", _pack(_event(stream="ES3", session="S3")), ["unknown session", "S3"]),
    ("unknown-slot", b"ES1", _pack(_event(date="2025-01-04", slots={"12:00": {"result": "Win"}})),
     ["unknown slot", "12:00"]),
    ("bad-result", b"ES1", _pack(_event(date="2025-01-04", slots={"07:30": {"result": "Maybe"}})),
     ["bad result", "Maybe"]),
    ("negative-peak", b"ES1", _pack(_event(date="2025-01-04", slots={"07:30": {"result": "Win", "peak": -1.0}})),
     ["peak", ">= 0"]),
    ("nan-peak", b"ES1", _pack(_event(date="2025-01-04", slots={"07:30": {"result": "Win", "peak": float("nan")}})),
     ["peak", "finite"]),
    ("infinite-peak", b"ES1", _pack(_event(date="2025-01-04", slots={"07:30": {"result": "Win", "peak": float("inf")}})),
     ["peak", "finite"]),
    ("wrong-type-date", b"ES1", _pack(_event(date=20250104)), ["date"]),
    ("wrong-type-peak", b"ES1", _pack(_event(date="2025-01-04", slots={"07:30": {"result": "Win", "peak": "high"}})),
     ["peak", "number"]),
    ("wrong-type-slots", b"ES1", _pack(_event(date="2025-01-04", slots=["07:30"])), ["slots"]),
    ("not-a-map", b"ES1", _pack([1, 2, 3]), ["map"]),
    ("stream-name-traversal", b"../x", _pack(_event(stream="../x")), ["stream name", "../x"]),
    ("out-of-order", b"ES1", _pack(_event(date="2025-01-02")), ["out of order", "2025-01-02"]),
    ("duplicate-different-payload", b"ES1",
     _pack(_event(slots={"07:30": {"result": "Loss", "peak": 1.0}})), ["duplicate", "different payload"]),
    ("too-large", b"ES1", _pack(_event(date="2025-01-04", padding="x" * (2 * MAX_EVENT_BYTES))),
     ["exceeds the limit", str(MAX_EVENT_BYTES)]),
    # Issue 13: each of these stopped the agent, or passed, before.
    ("deep-json", b"ES1", b'{"stream":"ES1","date":"2025-01-04","slots":{"07:30":' + b"[" * 1900 + b"]" * 1900 + b"}}",
     ["malformed JSON", "nested deeper"]),
    ("over-a-megabyte", b"ES1", _pack(_event(date="2025-01-04", padding="x" * 1_200_000)),
     ["exceeds the limit"]),
    ("huge-number", b"ES1",
     b'{"stream":"ES1","date":"2025-01-04","slots":{"07:30":{"result":"Win","peak":' + b"9" * 30 + b"}}}",
     ["peak", "beyond the limit"]),
    ("future-date", b"ES1", _pack(_event(date="2205-01-09")), ["in the future", "2205-01-09"]),
    ("stream-with-newline", b"ES1\n", _pack(_event(stream="ES1\n", date="2025-01-04")), ["stream name"]),
]
DUPLICATE_SAME = _pack(GOOD_FIRST)                     # same payload again: skipped, no dead letter
GOOD_AFTER = _event(date="2025-01-06", slots={"07:30": {"result": "Loss", "peak": 20.0}})


@pytest.fixture(scope="module")
def bad_run(kafka_bootstrap, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad-input")
    setup = Setup(kafka_bootstrap, tmp / "state", partitions=1,
                  extra_env={"SEQUENCER_MAX_EVENT_BYTES": str(MAX_EVENT_BYTES)})
    worker = setup.start_worker(tmp / "worker.log")
    try:
        records = [(b"ES1", _pack(GOOD_FIRST))] + [(key, value) for _, key, value, _ in BAD] \
            + [(b"ES1", DUPLICATE_SAME), (b"ES1", _pack(GOOD_AFTER))]
        ends = setup.produce_raw(records, partition=0)
        setup.wait_consumed(ends, worker)
        alive_after = worker.alive()
        letters = setup.dead_letters()
        decisions = setup.decisions()
    finally:
        assert worker.stop() == 0, worker.log_tail()
    offsets = {case: 1 + i for i, (case, *_rest) in enumerate(BAD)}
    return {"setup": setup, "letters": letters, "offsets": offsets, "decisions": decisions,
            "alive_after": alive_after, "records": records}


@pytest.mark.parametrize("case, key, value, words", BAD, ids=[case for case, *_ in BAD])
def test_bad_record_is_dead_lettered_with_reason(bad_run, case, key, value, words):
    offset = bad_run["offsets"][case]
    found = [d for d in bad_run["letters"] if d["source_offset"] == offset]
    assert len(found) == 1, f"{case}: dead letters at offset {offset}: {found}"
    letter = found[0]
    for word in words:
        assert word in letter["reason"], f"{case}: reason {letter['reason']!r} lacks {word!r}"
    # the original bytes, cut to the configured size, with the length and sha256 of the whole
    cut = DEFAULT_DEAD_LETTER_VALUE_BYTES
    assert letter["value"] == value[:cut]
    assert letter["value_length"] == len(value)
    assert letter["value_truncated"] is (len(value) > cut)
    assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert letter["key"] == key
    assert letter["source_topic"] == bad_run["setup"].topic_events
    assert letter["source_partition"] == 0


def test_worker_keeps_running_and_applies_the_valid_events(bad_run):
    assert bad_run["alive_after"]
    # exactly one dead letter per bad record: the same-payload duplicate is not one
    assert sorted(d["source_offset"] for d in bad_run["letters"]) == sorted(bad_run["offsets"].values())
    got = [(d.stream, d.date) for d in bad_run["decisions"]]
    assert got == [("ES1", "2025-01-03"), ("ES1", "2025-01-06")]
    loaded, refused = bad_run["setup"].store().load_all()
    assert not refused
    assert sorted(loaded) == ["ES1"]          # nothing written for ZZ1, ES3 or ../x
    from sequencer.domain import parse_day_event
    config = SequencerConfig()
    expected, _ = replay([parse_day_event(GOOD_FIRST, config), parse_day_event(GOOD_AFTER, config)])
    assert comparable(loaded["ES1"].state) == comparable(expected["ES1"])
    # the checkpoint's position covers every record of ES1, bad ones included or not
    assert loaded["ES1"].state.source_offsets[f"{bad_run['setup'].topic_events}:0"] == len(bad_run["records"])


# --- corrupt checkpoints ----------------------------------------------------------------


def _corrupt_files(folder, good_es1_doc: dict) -> dict[str, str]:
    """Write one bad checkpoint per kind; returns file name -> words its refusal must contain."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(good_es1_doc, indent=2)
    (folder / "state_ES_ES1.json").write_text(text[: len(text) // 2])                     # truncated
    (folder / "state_ES_ES2.json").write_text("this is not JSON at all\n")                 # not JSON
    other_schema = dict(good_es1_doc, stream="NQ1", instrument="NQ", schema_version=99)
    (folder / "state_NQ_NQ1.json").write_text(json.dumps(other_schema))                   # other schema
    (folder / "state_NQ_NQ2.json").write_text(json.dumps(dict(good_es1_doc)))            # other stream (ES1)
    other_config = dict(good_es1_doc, stream="YM1", instrument="YM", config_id="0123456789ab")
    (folder / "state_YM_YM1.json").write_text(json.dumps(other_config))                  # other config
    return {"state_ES_ES1.json": "truncated", "state_ES_ES2.json": "JSON",
            "state_NQ_NQ1.json": "schema", "state_NQ_NQ2.json": "ES1",
            "state_YM_YM1.json": "config"}


def test_corrupt_checkpoints_are_refused_by_name_and_the_worker_uses_the_log(kafka_bootstrap, tmp_path):
    config = SequencerConfig()
    events = [e for e in read_day_events(sorted(SAMPLE.glob("*.csv")), config).events
              if e.date < "2018-07-01"]
    expected, expected_decisions = replay(events)
    setup = Setup(kafka_bootstrap, tmp_path / "state", partitions=2)
    # A believable ES1 state (from a replay of its first days), then broken five ways.
    head_states, _ = replay([e for e in events if e.stream == "ES1"][:30])
    kinds = _corrupt_files(setup.store().folder, state_to_dict(head_states["ES1"], saved_at="2025-01-01T00:00:00"))

    worker = setup.start_worker(tmp_path / "worker.log")
    try:
        ends = setup.publish(events)
        setup.wait_consumed(ends, worker)
        decisions = setup.decisions()
    finally:
        assert worker.stop() == 0, worker.log_tail()
    log = (tmp_path / "worker.log").read_text(errors="replace")
    for name, word in kinds.items():
        lines = [line for line in log.splitlines() if name in line and "refused" in line]
        assert lines, f"{name} not refused by name in the worker log:\n{log[-3000:]}"
        assert any(word.lower() in line.lower() for line in lines), (name, lines)

    # Every stream ends as a replay of the log says: no corrupt file was used.
    loaded, refused = setup.store().load_all()
    assert not refused, refused       # the bad files were replaced at the clean shutdown
    assert sorted(loaded) == sorted(expected)
    for stream in expected:
        assert comparable(loaded[stream].state) == comparable(expected[stream]), stream
    assert [d.to_dict() for d in decisions] == [
        d.to_dict() for d in sorted(expected_decisions, key=lambda d: (d.date, d.stream))]
