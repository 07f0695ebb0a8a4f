"""`sequencer.app.log_fold` on its own: folding event-topic records (as rebuild and
verify read them from the log) gives what the batch path gives for the same
events; ``as_of``, snapshots, dead-letter counts and the partition of each
stream are kept on the way."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import msgpack
import pytest

from sequencer.app.codecs import encode_event
from sequencer.domain import SequencerConfig, state_to_dict
from sequencer.app import log_fold
from sequencer.app.log_fold import LogFold, chosen_streams
from sequencer.app.records import SourceRecord
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
CONFIG = SequencerConfig()
TOPIC = "events"
MAX_EVENT_BYTES = 1 << 20

#: What aiokafka's consumer hands out (the fields LogFold reads).
ConsumerRecord = namedtuple("ConsumerRecord", "topic partition offset key value timestamp")


@pytest.fixture(scope="module")
def events():
    """Two streams of the sample, 2024 on: a few hundred day events."""
    found = read_day_events([SAMPLE / "trades_ES.csv", SAMPLE / "trades_NQ.csv"], CONFIG).events
    return [e for e in found if e.stream in ("ES1", "NQ2") and e.date >= "2024-01-01"]


def as_log(events, partition_of=lambda stream: 0 if stream == "ES1" else 1):
    """The events as records of their stream's partition, offsets counted per partition."""
    next_offset: dict[int, int] = {}
    records = []
    for event in events:
        partition = partition_of(event.stream)
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        records.append(SourceRecord(TOPIC, partition, offset, event.stream.encode(), encode_event(event)))
    return records


def comparable(states):
    docs = {stream: state_to_dict(state) for stream, state in states.items()}
    for doc in docs.values():
        doc.pop("source_offsets")  # the batch path has no log offsets
    return docs


def test_folding_the_log_equals_the_batch_path(events):
    fold = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES)
    fold.feed(as_log(events))
    decisions = []
    expected = replay_events(events, CONFIG, on_decision=decisions.append)
    assert comparable(fold.states) == comparable(expected.states)
    assert fold.decisions == len(decisions)
    assert fold.decisions_by_stream == {s: sum(d.stream == s for d in decisions) for s in ("ES1", "NQ2")}
    assert fold.partition_of == {"ES1": 0, "NQ2": 1}
    assert fold.dead_letter_reasons == {}


def test_consumer_records_with_millisecond_timestamps_fold_like_source_records(events):
    records = as_log(events)
    fold = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES)
    fold.feed(ConsumerRecord(r.topic, r.partition, r.offset, r.key, r.value, 1_767_225_600_000) for r in records)
    plain = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES)
    plain.feed(records)
    assert {s: state_to_dict(st) for s, st in fold.states.items()} == {
        s: state_to_dict(st) for s, st in plain.states.items()}


def test_the_fold_is_the_same_whatever_the_chunks(events, monkeypatch):
    records = as_log(events)
    whole = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES)
    whole.feed(records)
    monkeypatch.setattr(log_fold, "FOLD_CHUNK", 5)  # the processor gets 5 records at a time
    chunked = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES)
    for start in range(0, len(records), 7):
        chunked.feed(records[start:start + 7])
    assert {s: state_to_dict(st) for s, st in whole.states.items()} == {
        s: state_to_dict(st) for s, st in chunked.states.items()}
    assert whole.decisions == chunked.decisions


def test_as_of_stops_at_the_date_and_counts_what_it_left(events):
    as_of = "2024-06-28"
    fold = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES, as_of=as_of)
    fold.feed(as_log(events))
    expected = replay_events([e for e in events if e.date <= as_of], CONFIG)
    assert comparable(fold.states) == comparable(expected.states)
    assert fold.after_as_of == sum(e.date > as_of for e in events) > 0


def test_a_snapshot_is_the_state_exactly_that_far_into_the_log(events):
    records = as_log(events)
    es1 = [r for r in records if r.partition == 0]
    cut = es1[40]  # after the 41st ES1 record
    fold = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES,
                   snapshots_at={(0, cut.offset + 1): ["ES1", "YM1"]})
    fold.feed(records)
    prefix = replay_events([e for e in events if e.stream == "ES1"][:41], CONFIG)
    assert comparable({"ES1": fold.snapshots["ES1"]}) == comparable(prefix.states)
    assert fold.snapshots["YM1"] is None  # a stream the log never had by then


def test_seeded_states_go_on_and_bad_records_are_counted_by_kind(events):
    es1 = [e for e in events if e.stream == "ES1"]
    head = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES)
    head.feed(as_log(es1[:20]))
    tail = LogFold(CONFIG, TOPIC, max_event_bytes=MAX_EVENT_BYTES, states=head.states,
                   last_events=head.last_events)
    assert tail.partition_of == {"ES1": 0}  # from the seeded state's source offsets
    bad_result = {**es1[25].to_dict(), "date": es1[-1].date}
    bad_result["slots"] = {slot: {**outcome, "result": "Maybe"} for slot, outcome in bad_result["slots"].items()}
    rest = as_log(es1[20:])
    offset = len(es1)
    rest += [SourceRecord(TOPIC, 0, offset, b"ES1", b"\xc1 not msgpack"),
             SourceRecord(TOPIC, 0, offset + 1, b"ES1", msgpack.packb(bad_result)),
             SourceRecord(TOPIC, 0, offset + 2, b"ES1", encode_event(es1[3]))]  # older than the state
    tail.feed(rest)
    assert comparable(tail.states) == comparable(replay_events(es1, CONFIG).states)
    assert tail.dead_letter_reasons == {"malformed msgpack": 1, "bad result": 1, "out of order": 1}


def test_chosen_streams_are_the_named_ones_or_every_known_one():
    assert chosen_streams(["NQ2", "ES1", "ES1"], {"YM1"}) == ["ES1", "NQ2"]
    assert chosen_streams(None, {"YM1": 1}, ["ES1", "YM1"]) == ["ES1", "YM1"]
    assert chosen_streams([], set()) == []
