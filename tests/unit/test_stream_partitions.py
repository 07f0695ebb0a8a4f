"""One stream, one partition (SPEC 3: key = stream name): a record of a stream from a
partition other than the one its state was folded from is dead-lettered, naming both.

Producers that place records themselves do spread a stream: a null key under
librdkafka's or the Java client's sticky partitioner, kafka-go's default
round-robin balancer, an explicit ``partition=``. Before, the worker folded
whatever arrived first: the days of the other partition were dead-lettered as
"out of order" or folded, depending on which partition's fetch came first (a
rebuild of the same log came to another state and `verify` reported drift),
the stream's changelog records went to both partitions (a restore takes either,
an older one included), and two workers each folded a part of the stream.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.app.codecs import encode_event
from sequencer.app.log_fold import LogFold
from sequencer.app.processor import EventProcessor
from sequencer.app.records import SourceRecord
from sequencer.domain import SequencerConfig, home_partition

from tests.unit.test_equivalences import plain_fold, sequences

TOPIC = "ev"


def _records(placed):
    """(partition, key, event) -> SourceRecords, offsets counted per partition."""
    next_offset: dict[int, int] = {}
    records = []
    for partition, key, event in placed:
        offset = next_offset.get(partition, 0)
        next_offset[partition] = offset + 1
        records.append(SourceRecord(TOPIC, partition, offset, key, encode_event(event)))
    return records


def _fold(records, config, batches=1):
    states: dict = {}
    processor = EventProcessor(config, states.get)
    letters, decisions = [], []
    size = max(1, -(-len(records) // batches))
    for start in range(0, len(records), size):
        outcome = processor.process(records[start:start + size])
        states.update(outcome.states)
        letters += outcome.dead_letters
        decisions += outcome.decisions
    return states, decisions, letters


@settings(max_examples=150, deadline=None)
@given(sequences(), st.data())
def test_a_stream_is_folded_from_the_first_partition_it_came_from_only(case, data):
    config, events = case
    partitions = data.draw(st.lists(st.integers(0, 2), min_size=len(events), max_size=len(events)), label="partitions")
    keyed = data.draw(st.booleans(), label="keyed")
    placed = [(p, e.stream.encode() if keyed else None, e) for p, e in zip(partitions, events)]
    batches = data.draw(st.integers(1, 4), label="batches")
    states, decisions, letters = _fold(_records(placed), config, batches)

    home: dict[str, int] = {}
    for partition, _, event in placed:
        home.setdefault(event.stream, partition)
    at_home = [e for p, _, e in placed if p == home[e.stream]]
    elsewhere = [(p, e) for p, _, e in placed if p != home[e.stream]]
    want_states, want_decisions = plain_fold(at_home, config)
    assert {s: st._replace(source_offsets={}) for s, st in states.items()} == want_states
    assert decisions == want_decisions
    for stream, state in states.items():
        assert [int(k.rpartition(":")[2]) for k in state.source_offsets] == [home[stream]]
    assert [(d.record.partition, d.stream) for d in letters] == [(p, e.stream) for p, e in elsewhere]
    for letter in letters:
        assert letter.reason.startswith(f"wrong partition: {letter.stream} arrived on partition "
                                        f"{letter.record.partition} of {TOPIC}")
        assert f"but its state was folded from partition {home[letter.stream]};" in letter.reason
        assert ("(this record has no key)" in letter.reason) is (not keyed)


def test_a_record_of_another_partition_is_refused_with_both_partitions_and_a_consumer_can_count_it():
    config = SequencerConfig()
    _, events = _two_days()
    states, decisions, letters = _fold(_records([(0, b"ES1", events[0]), (3, b"ES1", events[1])]), config)
    assert [d.date for d in decisions] == [events[0].date]
    assert states["ES1"].source_offsets == {f"{TOPIC}:0": 1}
    (letter,) = letters
    assert letter.reason == (
        f"wrong partition: ES1 arrived on partition 3 of {TOPIC}, but its state was folded from partition 0; "
        "one stream's events must all be in one partition: key every record by its stream name and let one "
        "partitioner place it")
    from sequencer.app.processor import reason_kind
    assert reason_kind(letter.reason) == "wrong partition"


def test_a_state_split_before_keeps_its_first_partition_the_one_the_worker_files_it_under():
    from sequencer.adapters.faust.live_state import changelog_partition

    config = SequencerConfig()
    first, events = _two_days()
    state, _ = plain_fold([first], config)
    split = state["ES1"]._replace(source_offsets={f"{TOPIC}:2": 5, f"{TOPIC}:0": 9})
    assert home_partition(split.source_offsets, TOPIC) == 2
    assert changelog_partition(split, "ES1", TOPIC, 4) == 2
    processor = EventProcessor(config, {"ES1": split}.get)
    refused = processor.process([SourceRecord(TOPIC, 0, 9, b"ES1", encode_event(events[1]))])
    assert [d.reason.split(";")[0] for d in refused.dead_letters] == [
        f"wrong partition: ES1 arrived on partition 0 of {TOPIC}, but its state was folded from partition 2"]
    folded = processor.process([SourceRecord(TOPIC, 2, 5, b"ES1", encode_event(events[1]))])
    assert [d.date for d in folded.decisions] == [events[1].date]


def test_a_rebuild_reading_the_partitions_one_after_the_other_folds_what_the_worker_folds():
    # The worker saw partition 1 first; a rebuild reads partition 0 first. Seeded
    # from the worker's checkpoint (rebuild --from checkpoint, verify), the same
    # records of partition 0 are refused, not folded.
    config = SequencerConfig()
    _, events = _two_days(4)
    live_records = _records([(1, b"ES1", events[0]), (0, b"ES1", events[1]), (1, b"ES1", events[2]),
                             (0, b"ES1", events[3])])
    live_states, _, _ = _fold(live_records[:1], config)
    log = LogFold(config, TOPIC, max_event_bytes=65536, states=live_states)
    log.feed(sorted(live_records[1:], key=lambda r: (r.partition, r.offset)))
    assert log.states["ES1"].last_processed_date == events[2].date
    assert log.states["ES1"].events_applied == 2
    assert log.dead_letter_reasons == {"wrong partition": 2}


def _two_days(count: int = 2):
    from sequencer.domain import parse_day_event

    config = SequencerConfig()
    events = [parse_day_event({"stream": "ES1", "date": f"2025-01-{day:02d}",
                               "slots": {"07:30": {"result": "Win", "peak": 12.0}}}, config)
              for day in range(6, 6 + count)]
    return events[0], events


@settings(max_examples=100, deadline=None)
@given(sequences(), st.data())
def test_on_a_topic_of_several_partitions_a_record_without_a_key_is_refused_wherever_it_lands(case, data):
    # Each worker of a group sees only its partitions: a stream spread by a
    # keyless producer from its first day on would get a state in each (no
    # record of it on another partition is ever seen there). The refusal
    # depends on the record alone, so every worker and a rebuild agree.
    config, events = case
    count = data.draw(st.integers(2, 4), label="partitions")
    placed = [(data.draw(st.integers(0, count - 1)), data.draw(st.sampled_from([None, b"", e.stream.encode()])), e)
              for e in events]
    records = _records(placed)
    processor = EventProcessor(config, {}.get, partitions=count)
    outcome = processor.process(records)
    keyless = [r for r in records if not r.key]
    assert [d.record for d in outcome.dead_letters if d.reason.startswith("no key:")] == keyless
    for letter in outcome.dead_letters:
        if letter.reason.startswith("no key:"):
            assert letter.reason == (
                f"no key: {letter.stream} arrived without a key on partition {letter.record.partition} of {TOPIC}, "
                f"a topic of {count} partitions, where a stream without its key is spread over the partitions; "
                "key every record by its stream name")
    # The same records read back from the log (each partition after the other) refuse the same.
    log = LogFold(config, TOPIC, max_event_bytes=65536)
    log.topic_partitions(count)
    log.feed(sorted(records, key=lambda r: (r.partition, r.offset)))
    assert log.dead_letter_reasons.get("no key", 0) == len(keyless)
    # On a topic of one partition a stream cannot be spread: a record without a key is folded.
    single = [r._replace(partition=0, offset=i) for i, r in enumerate(records)]
    alone = EventProcessor(config, {}.get, partitions=1).process(single)
    assert not [d for d in alone.dead_letters if d.reason.startswith(("no key:", "wrong partition:"))]
    assert len(alone.decisions) == len(events)


def test_a_fold_of_the_log_from_its_start_takes_the_home_partitions_of_the_checkpoints():
    # verify and rebuild --from log start without states and may read partition 1
    # first; the worker's checkpoint says the stream lives in partition 0.
    config = SequencerConfig()
    _, events = _two_days(4)
    records = _records([(0, b"ES1", events[0]), (1, b"ES1", events[1]), (0, b"ES1", events[2]),
                        (1, b"ES1", events[3])])
    worker_states, _, _ = _fold(records, config)
    assert worker_states["ES1"].source_offsets == {f"{TOPIC}:0": 2}
    partition_1_first = sorted(records, key=lambda r: (-r.partition, r.offset))
    for homes, applied in (([], [events[1].date, events[3].date]), ([worker_states["ES1"]], [events[0].date, events[2].date])):
        log = LogFold(config, TOPIC, max_event_bytes=65536)
        log.known_homes(homes)
        log.feed(partition_1_first)
        assert log.decisions == 2 and log.dead_letter_reasons == {"wrong partition": 2}
        assert log.states["ES1"].last_processed_date == applied[-1]
    assert log.states["ES1"] == worker_states["ES1"]


def test_two_workers_folding_one_stream_from_two_partitions_never_overwrite_each_others_checkpoint(tmp_path):
    # A keyed stream placed by its producer on two partitions from its first day
    # (kafka-go's round robin): each of two workers sees one partition only and
    # folds its part. Before, their checkpoint rounds replaced each other's file
    # (whichever had gone further won); now the second is refused, naming both.
    import pytest

    from sequencer.adapters.faust.live_state import CheckpointSchedule
    from sequencer.adapters.files.checkpoints import CheckpointStore, OtherPartitionCheckpoint

    config = SequencerConfig()
    _, events = _two_days(4)
    records = _records([(i % 2, b"ES1", e) for i, e in enumerate(events)])
    worker_a, _, _ = _fold([r for r in records if r.partition == 0], config)
    worker_b, _, _ = _fold([r for r in records if r.partition == 1], config)
    store = CheckpointStore(tmp_path, config)
    path = store.save(worker_a["ES1"])
    written = path.read_bytes()
    with pytest.raises(OtherPartitionCheckpoint, match=(
            f"it holds ES1 folded from partition 0 of {TOPIC}, this state was folded from partition 1; "
            "the stream's events are in two partitions")):
        store.save(worker_b["ES1"])
    assert path.read_bytes() == written
    # A worker's round names it as a file not written (logged as an error, tried again).
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=60)
    assert schedule.save_round([worker_b["ES1"]]).failed == ("ES1",)
    # The same home goes on as before, and so does a state of another events topic.
    later, _, _ = _fold(records[::2] + [SourceRecord(TOPIC, 0, 2, b"ES1", encode_event(events[3]))], config)
    assert store.save(later["ES1"]) == path
    elsewhere = later["ES1"]._replace(source_offsets={"other-topic:3": 1}, events_applied=9)
    assert store.save(elsewhere) == path
