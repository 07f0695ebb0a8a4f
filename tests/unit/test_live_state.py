"""`sequencer.adapters.faust.live_state` on its own: where the worker finds a stream's state
(cache, then table, then checkpoint), the changelog partition
and the periodic checkpoint schedule. Plain dicts stand for the Faust tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import HealthCheck, given, settings

from sequencer.adapters.files.checkpoints import CheckpointStore
from sequencer.domain import SequencerConfig, initial_state, state_to_dict
from sequencer.adapters.faust.live_state import CheckpointSchedule, LiveStates, changelog_partition
from sequencer.app.codecs import decode_state, encode_event, encode_state
from sequencer.app.replay import replay_events
from sequencer.adapters.files.sources import read_day_events

from tests.support import frozen_event_validation as frozen
from tests.unit.test_typed_codecs import outcome_of, records

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
CONFIG = SequencerConfig()


@pytest.fixture(scope="module")
def es_events():
    events = read_day_events([SAMPLE / "trades_ES.csv"], CONFIG).events
    return [e for e in events if e.stream == "ES1"][:30]


@pytest.fixture(scope="module")
def folded(es_events):
    """ES1 after 20 and after 30 days of the sample, by the batch path."""
    early = replay_events(es_events[:20], CONFIG).states["ES1"]
    late = replay_events(es_events, CONFIG).states["ES1"]
    return early, late


def test_a_state_goes_through_the_table_codec_unchanged(folded):
    for state in folded:
        assert state_to_dict(decode_state(encode_state(state), CONFIG)) == state_to_dict(state)


def test_the_cache_wins_then_the_table_then_the_checkpoint(folded):
    early, late = folded
    table: dict[str, bytes] = {}
    live = LiveStates(CONFIG, read_table=table.get, seeds={"ES1": early})
    assert live.get("ES1") == early and live.seeded == ["ES1"]  # nothing in the table: the seed
    live.forget()
    table["ES1"] = encode_state(late)
    assert live.get("ES1").last_processed_date == late.last_processed_date  # the table beats the seed
    live.put("ES1", early)
    assert live.get("ES1") is early  # the cache beats the table
    assert live.cached() == {"ES1": early}
    assert live.get("NQ1") is None  # known nowhere


def test_a_refused_table_value_falls_back_to_the_checkpoint(folded, caplog):
    early, _ = folded
    live = LiveStates(CONFIG, read_table={"ES1": b"{not json"}.get, seeds={"ES1": early})
    assert live.get("ES1") == early
    assert "table value of ES1 refused" in caplog.text


def test_checkpoint_only_lists_the_seeds_served_for_want_of_a_table_value(folded):
    early, late = folded
    table = {"ES1": encode_state(late), "ES2": b"{not json"}
    seeds = {name: early._replace(stream=name) for name in ("ES1", "ES2", "ES3", "ES4")}
    live = LiveStates(CONFIG, read_table=table.get, seeds=seeds)
    live.put("ES4", late)  # folded this run: the cache holds it
    # ES1 is in the table; ES2's value is refused and ES3 has none: both are
    # served from their checkpoints, as get says.
    assert sorted(s.stream for s in live.checkpoint_only()) == ["ES2", "ES3"]
    assert live.get("ES2") == seeds["ES2"] and live.get("ES3") == seeds["ES3"]
    assert live.get("ES1").last_processed_date == late.last_processed_date


def test_a_table_value_behind_its_checkpoint_gives_way_to_the_checkpoint(folded, caplog):
    """Checkpoints are written from states already in the changelog: a table
    value behind one lost records, and the checkpoint has seen more."""
    early, late = folded
    live = LiveStates(CONFIG, read_table={"ES1": encode_state(early)}.get, seeds={"ES1": late})
    assert [s.stream for s in live.checkpoint_only()] == ["ES1"]
    assert "behind" not in caplog.text  # looking does not report
    assert live.get("ES1") == late and live.seeded == ["ES1"]
    assert "table value of ES1 (last processed" in caplog.text and "the checkpoint is taken" in caplog.text
    assert live.checkpoint_only() == []  # in the cache now


def test_a_value_read_while_the_tables_restore_is_served_but_never_kept(folded, caplog):
    """A view or a scrape during a recovery reads a half-restored table: what it
    sees must not become the state the fold goes on from once the table is whole."""
    early, late = folded
    table = {"ES1": encode_state(early)}  # the changelog read only part of the way
    ready = False
    live = LiveStates(CONFIG, read_table=table.get, seeds={"ES1": early._replace(events_applied=25)},
                      tables_ready=lambda: ready)
    assert live.get("ES1").events_applied == 25  # the seed looks newer: served as the answer
    assert live.cached() == {} and live.seeded == [] and "behind" not in caplog.text
    table["ES1"] = encode_state(late)  # the recovery reads the rest
    ready = True
    assert live.get("ES1").last_processed_date == late.last_processed_date  # the whole table wins
    assert live.cached()["ES1"].last_processed_date == late.last_processed_date


def test_drop_keeps_the_seed_and_forget_of_a_stream_does_not(folded):
    early, _ = folded
    live = LiveStates(CONFIG, read_table={}.get, seeds={"ES1": early})
    live.get("ES1")
    live.drop("ES1")  # a revoked partition: seeded again if it comes back
    assert live.cached() == {} and live.get("ES1") == early
    assert live.seeded == ["ES1"]  # noted once
    live.forget("ES1")  # a reset: the seed goes too
    assert live.get("ES1") is None


def test_the_last_event_is_read_from_its_table_once_and_a_bad_one_is_none(es_events):
    reads: list[str] = []
    table = {"ES1": encode_event(es_events[-1]), "NQ1": b"\xc1 not msgpack"}

    def read(stream: str) -> bytes | None:
        reads.append(stream)
        return table.get(stream)

    live = LiveStates(CONFIG, read_table={}.get, read_last_event=read)
    assert live.last_event("ES1") == es_events[-1]
    assert live.last_event("ES1") == es_events[-1]
    assert reads == ["ES1"]  # decoded once, then cached
    assert live.last_event("NQ1") is None
    live.put("ES1", initial_state("ES1", CONFIG), es_events[0])
    assert live.last_event("ES1") == es_events[0]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_a_last_event_value_decodes_as_the_generic_validation_does(data):
    # The typed decoder reads the last-events table; whatever the bytes, the event (values
    # and their types) or the refusal is what decode_payload + parse_day_event made of them
    # (the frozen copy of that path in tests/support), a refusal being None here.
    live = LiveStates(CONFIG, read_table={}.get, read_last_event=lambda stream: data)
    found = live.last_event("ES1")
    expected = outcome_of(lambda raw: frozen.decode_event(raw, CONFIG), data)
    if found is None:
        assert expected[0] == "refused"
    else:
        assert outcome_of(lambda raw: found, data) == expected


def test_the_changelog_partition_is_the_partition_of_the_states_events(folded):
    _, late = folded
    on_3 = late.with_source_offsets({"events:3": 41})
    assert changelog_partition(on_3, "ES1", "events", 8) == 3
    elsewhere = late.with_source_offsets({"other-topic:5": 9})
    partitioner = DefaultPartitioner()
    for stream in ("ES1", "NQ2", "YM1", "CL3"):  # no offsets on the topic: aiokafka's own partitioner
        expected = partitioner(stream.encode(), list(range(8)), list(range(8)))
        assert changelog_partition(None, stream, "events", 8) == expected
        assert changelog_partition(elsewhere, stream, "events", 8) == expected


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_checkpoints_are_due_after_n_events_or_t_seconds_and_only_with_changes(tmp_path, folded):
    _, late = folded
    clock = _Clock()
    schedule = CheckpointSchedule(CheckpointStore(tmp_path, CONFIG), every_events=10, every_seconds=30, clock=clock)
    schedule.note(["ES1"], applied=9)
    assert not schedule.due()
    schedule.note(["ES1"], applied=1)
    assert schedule.due()  # 10 events
    assert schedule.write({"ES1": late, "NQ1": initial_state("NQ1", CONFIG)}) == 1  # only the changed stream
    assert [p.name for p in tmp_path.iterdir()] == ["state_ES_ES1.json"]
    assert schedule.written == 1 and schedule.last_written_at is not None
    assert not schedule.due()
    schedule.note(["ES1"], applied=1)
    clock.now += 29
    assert not schedule.due()
    clock.now += 1
    assert schedule.due()  # 30 seconds
    schedule.write({"ES1": late})
    clock.now += 600
    assert not schedule.due()  # time passed, nothing changed


def test_a_failed_checkpoint_is_counted_and_does_not_move_the_age(tmp_path, folded):
    _, late = folded
    folder = tmp_path / "state"
    store = CheckpointStore(folder, CONFIG)
    if folder.exists():
        folder.rmdir()
    folder.write_text("a file where the folder was")  # the disk changed under the worker
    clock = _Clock()
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=5, clock=clock)
    schedule.note(["ES1"], applied=1)
    assert schedule.write({"ES1": late}) == 0
    assert schedule.failures == 1 and schedule.last_written_at is None
    clock.now += 5
    assert schedule.due()  # still changed: written at the next round
    folder.unlink()
    assert schedule.write({"ES1": late}) == 1 and schedule.last_written_at is not None


def test_an_older_state_than_the_file_is_refused_not_failed(tmp_path, folded):
    early, late = folded
    store = CheckpointStore(tmp_path, CONFIG)
    store.save(late)
    schedule = CheckpointSchedule(store, every_events=1, every_seconds=1)
    schedule.note(["ES1"], applied=1)
    assert schedule.write({"ES1": early}) == 0
    assert schedule.refused_older == 1 and schedule.failures == 0
    assert store.load("ES1", "ES").state.last_processed_date == late.last_processed_date
