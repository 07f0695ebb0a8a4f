"""State JSON (SPEC 4) and checkpoint files (SPEC 7): round trips, refusals, the older layout."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.adapters.files.checkpoints import CheckpointError, CheckpointStore, checkpoint_folder
from sequencer.app.codecs import decode_state, encode_state
from sequencer.domain import (
    SequencerConfig,
    SequencerError,
    apply_day,
    initial_state,
    parse_day_event,
    state_from_dict,
    state_to_dict,
)

CONFIG = SequencerConfig()
SAVED_AT = "2025-01-16T18:00:00+00:00"

#: SPEC 4's keys, written out independently of the code.
SPEC4_KEYS = {
    "schema_version", "stream", "instrument", "session", "config_id", "saved_at",
    "last_processed_date", "events_applied", "rolling_median_window", "median_ladder_window",
    "time_slot_histories", "current_time", "current_target", "rolling_median_target",
    "median_ladder_target", "median_ladder_current_step", "median_ladder_days_at_level",
    "no_trade_next", "source_offsets",
}


def store_at(folder: Path, config: SequencerConfig = CONFIG) -> CheckpointStore:
    return CheckpointStore(folder, config, clock=lambda: SAVED_AT)


def some_state(stream: str = "ES1", config: SequencerConfig = CONFIG, days: int = 15):
    """A state after ``days`` events with peaks and a few losses."""
    state = initial_state(stream, config)
    slots = config.sessions[state.session]
    for i in range(days):
        date = (dt.date(2025, 1, 1) + dt.timedelta(days=i)).isoformat()
        doc = {"stream": stream, "date": date, "slots": {
            slot: {"result": ("Loss" if (i + j) % 3 == 0 else "Win"), "peak": 5 + (i * 7 + j) % 11 * 1.25}
            for j, slot in enumerate(slots)}}
        state, _ = apply_day(state, parse_day_event(doc, config), config)
    return state


# --- state JSON round trip (hypothesis) -----------------------------------------------------

configs = st.builds(
    lambda depth, pos, promo, pct, mode, tc, nt: SequencerConfig(
        depth=depth, median_position=min(pos, depth), promotion_days=promo, max_target_pct=pct,
        target_mode=mode, time_change=tc, no_trade_on_low_median=nt),
    st.integers(1, 6), st.integers(1, 6), st.integers(0, 3), st.sampled_from([100, 150, 400, 1000]),
    st.sampled_from(["base", "rolling_median", "median_ladder"]), st.booleans(), st.booleans(),
)
peaks = st.one_of(
    st.none(),
    st.floats(min_value=0, max_value=500, allow_nan=False),
    st.integers(0, 200),
    st.integers(0, 4000).map(lambda n: n * 0.025),
)


@st.composite
def folded_states(draw):
    config = draw(configs)
    stream = draw(st.sampled_from(["ES1", "NQ2", "CL1", "NG2", "YM1", "GC2"]))
    state = initial_state(stream, config)
    slots = config.sessions[state.session]
    date = dt.date(2024, 12, 30)
    for _ in range(draw(st.integers(0, 25))):
        date += dt.timedelta(days=draw(st.integers(1, 4)))
        chosen = draw(st.lists(st.sampled_from(slots), unique=True, max_size=len(slots)))
        doc = {"stream": stream, "date": date.isoformat(), "slots": {}}
        for slot in chosen:
            outcome = {"result": draw(st.sampled_from(["Win", "Loss", "BE", "NoTrade", "TIME"]))}
            peak = draw(peaks)
            if peak is not None:
                outcome["peak"] = peak
            doc["slots"][slot] = outcome
        state, _ = apply_day(state, parse_day_event(doc, config), config)
    if draw(st.booleans()):
        state = state.with_source_offsets(
            draw(st.dictionaries(st.sampled_from(["events:0", "events:1", "events:7"]),
                                 st.integers(0, 2**40))))
    return config, state


@settings(max_examples=300, deadline=None)
@given(folded_states())
def test_state_json_round_trips_exactly(case):
    config, state = case
    doc = state_to_dict(state)
    assert set(doc) == SPEC4_KEYS - {"saved_at"}
    text = json.dumps(doc)
    loaded = state_from_dict(json.loads(text), config)
    assert loaded == state
    assert json.dumps(state_to_dict(loaded)) == text


@settings(max_examples=200, deadline=None)
@given(folded_states())
def test_the_table_value_codec_round_trips_exactly(case):
    # The worker's stream-states table and its changelog hold encode_state's bytes;
    # rebuild and verify decode them with decode_state.
    config, state = case
    data = encode_state(state)
    assert json.loads(data) == state_to_dict(state)  # SPEC 4 JSON, no saved_at
    assert data == json.dumps(json.loads(data), separators=(",", ":")).encode()  # compact
    assert decode_state(data, config) == state
    assert encode_state(decode_state(data, config)) == data


@settings(max_examples=100, deadline=None)
@given(folded_states())
def test_checkpoint_file_round_trips_exactly(tmp_path_factory, case):
    config, state = case
    store = store_at(tmp_path_factory.mktemp("cp"), config)
    path = store.save(state)
    checkpoint = store.load_file(path)
    assert checkpoint.state == state
    assert checkpoint.saved_at == SAVED_AT and checkpoint.upgraded_from_legacy is False


# --- CheckpointStore ---------------------------------------------------------------------------


def test_save_writes_one_spec_4_file_per_stream(tmp_path: Path):
    store = store_at(tmp_path)
    es1, nq2 = some_state("ES1"), some_state("NQ2")
    assert store.save(es1) == tmp_path / "state_ES_ES1.json"
    assert store.save(nq2) == tmp_path / "state_NQ_NQ2.json"
    doc = json.loads((tmp_path / "state_ES_ES1.json").read_text())
    assert set(doc) == SPEC4_KEYS
    assert doc["schema_version"] == 1 and doc["saved_at"] == SAVED_AT
    assert (doc["stream"], doc["instrument"], doc["session"], doc["config_id"]) == (
        "ES1", "ES", "S1", CONFIG.config_id)
    assert doc["events_applied"] == 15 and doc["last_processed_date"] == "2025-01-15"
    assert list(doc["time_slot_histories"]) == ["07:30", "08:00", "09:00"]
    assert sorted(os.listdir(tmp_path)) == ["state_ES_ES1.json", "state_NQ_NQ2.json"]


def test_load_list_and_clear(tmp_path: Path):
    store = store_at(tmp_path)
    states = {s: some_state(s) for s in ("ES1", "ES2", "NQ1")}
    store.save_all(states.values())
    assert [p.name for p in store.files()] == ["state_ES_ES1.json", "state_ES_ES2.json", "state_NQ_NQ1.json"]
    assert store.load("ES2", "ES").state == states["ES2"]
    assert store.load("YM1", "YM") is None
    loaded, refused = store.load_all()
    assert refused == [] and {s: cp.state for s, cp in loaded.items()} == states
    assert [p.name for p in store.clear("ES1")] == ["state_ES_ES1.json"]
    assert store.load("ES1", "ES") is None and store.load("ES2", "ES") is not None
    assert store.clear("ES1") == []
    assert len(store.clear_all()) == 2 and store.files() == []


def test_saving_again_replaces_the_file(tmp_path: Path):
    store = store_at(tmp_path)
    store.save(some_state(days=3))
    later = some_state(days=9)
    store.save(later)
    assert store.load("ES1", "ES").state == later
    assert os.listdir(tmp_path) == ["state_ES_ES1.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch):
    store = store_at(tmp_path)
    old = some_state(days=3)
    store.save(old)
    before = (tmp_path / "state_ES_ES1.json").read_bytes()

    def crash(fd):
        raise OSError(5, "disk on fire")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError):
        store.save(some_state(days=9))
    monkeypatch.undo()
    assert (tmp_path / "state_ES_ES1.json").read_bytes() == before
    assert os.listdir(tmp_path) == ["state_ES_ES1.json"]
    assert store.load("ES1", "ES").state == old


def test_stream_names_never_leave_the_folder(tmp_path: Path):
    store = store_at(tmp_path)
    for stream in ("../x", "a/b", "", "ES1.json"):
        with pytest.raises(SequencerError):
            store.path_for(stream, "ES")
    with pytest.raises(SequencerError):
        store.path_for("ES1", "../ES")
    with pytest.raises(SequencerError):
        store.clear("../ES1")


def test_one_folder_per_config_name(tmp_path: Path):
    assert checkpoint_folder(tmp_path, "default") == tmp_path
    assert checkpoint_folder(tmp_path, "fast") == tmp_path / "fast"
    for bad in ("../up", "a/b", "", "x" * 65, "with space"):
        with pytest.raises(SequencerError):
            checkpoint_folder(tmp_path, bad)
    fast = SequencerConfig(depth=5, median_position=3)
    default_store = store_at(checkpoint_folder(tmp_path, "default"))
    fast_store = store_at(checkpoint_folder(tmp_path, "fast"), fast)
    default_store.save(some_state())
    fast_store.save(some_state(config=fast))
    assert (tmp_path / "state_ES_ES1.json").exists() and (tmp_path / "fast" / "state_ES_ES1.json").exists()
    assert default_store.load("ES1", "ES").state.config_id == CONFIG.config_id
    assert fast_store.load("ES1", "ES").state.config_id == fast.config_id
    # the other config's file is refused, never mixed in
    with pytest.raises(CheckpointError, match="config_id"):
        store_at(tmp_path, fast).load("ES1", "ES")


# --- refused files --------------------------------------------------------------------------


def mutate(doc: dict, **changes) -> dict:
    doc = dict(doc)
    for key, value in changes.items():
        if value is DROP:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


DROP = object()

BAD_DOCUMENTS = [
    # (change to a good document, words of the problem)
    ({"schema_version": 2}, "schema_version 2"),
    ({"schema_version": "1"}, "schema_version"),
    ({"current_time": DROP}, "missing keys: current_time"),
    ({"events_applied": DROP, "no_trade_next": DROP}, "events_applied"),
    ({"events_applied": "15"}, "events_applied"),
    ({"events_applied": -1}, "events_applied"),
    ({"median_ladder_current_step": 1.5}, "median_ladder_current_step"),
    ({"rolling_median_window": "12,13"}, "rolling_median_window"),
    ({"rolling_median_window": [1, "2"]}, "rolling_median_window"),
    ({"rolling_median_window": [1, -2]}, "rolling_median_window"),
    ({"rolling_median_window": list(range(14))}, "depth"),
    ({"time_slot_histories": {"07:30": [], "08:00": []}}, "09:00"),
    ({"time_slot_histories": {"07:30": [5], "08:00": [], "09:00": []}}, "score"),
    ({"time_slot_histories": {"07:30": [], "08:00": [], "09:00": [], "10:00": []}}, "10:00"),
    ({"time_slot_histories": []}, "time_slot_histories"),
    ({"current_time": "10:00"}, "current_time"),
    ({"current_time": 7.5}, "current_time"),
    ({"current_target": "10"}, "current_target"),
    ({"current_target": None}, "current_target"),
    ({"no_trade_next": "false"}, "no_trade_next"),
    ({"no_trade_next": 0}, "no_trade_next"),
    ({"last_processed_date": "15/01/2025"}, "last_processed_date"),
    ({"source_offsets": {"events:0": -3}}, "source_offsets"),
    ({"source_offsets": []}, "source_offsets"),
    ({"saved_at": 12}, "saved_at"),
    ({"stream": "ES2"}, "disagree"),
    ({"stream": "../ES1"}, "stream"),
    ({"instrument": "NQ"}, "disagree"),
    ({"session": "S2"}, "disagree"),
    ({"config_id": "0123456789ab"}, "config_id"),
    ({"colour": "red"}, "unknown keys: colour"),
]


@pytest.mark.parametrize("changes, words", BAD_DOCUMENTS, ids=[w for _, w in BAD_DOCUMENTS])
def test_bad_documents_are_refused_naming_the_file(tmp_path: Path, changes, words):
    store = store_at(tmp_path)
    path = store.save(some_state())
    doc = mutate(json.loads(path.read_text()), **changes)
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError) as info:
        store.load_file(path)
    assert info.value.path == path
    assert str(path) in str(info.value) and words in str(info.value)
    loaded, refused = store.load_all()
    assert loaded == {} and [e.path for e in refused] == [path]


def test_truncated_files_are_refused_at_every_cut(tmp_path: Path):
    # A crash mid-write (of a tool that does not write atomically) may cut the
    # file anywhere: every cut is refused and called truncated.
    store = store_at(tmp_path)
    path = store.save(some_state(days=4))
    text = path.read_text().rstrip()
    for cut in range(1, len(text)):
        path.write_text(text[:cut])
        with pytest.raises(CheckpointError) as info:
            store.load_file(path)
        assert str(path) in str(info.value)
        assert "truncated" in info.value.problem, (cut, text[:cut][-20:], info.value.problem)


@pytest.mark.parametrize("content, words", [
    ("", "empty"), ("   \n", "empty"), ("hello", "not valid JSON"), ("[1, 2]", "JSON object"),
    ("null", "JSON object"), ("{\"a\": 1} trailing", "not valid JSON"),
])
def test_empty_and_non_json_files_are_refused(tmp_path: Path, content, words):
    path = tmp_path / "state_ES_ES1.json"
    path.write_text(content)
    with pytest.raises(CheckpointError) as info:
        store_at(tmp_path).load_file(path)
    assert str(path) in str(info.value) and words in str(info.value)


@pytest.mark.parametrize("key, layout", [("current_target", "current"), ("median_ladder_current_step", "current"),
                                         ("07:30", "current"), ("current_time", "older")])
def test_a_key_given_twice_in_a_checkpoint_file_is_refused_naming_it(tmp_path: Path, key, layout):
    """A file edited by hand with a key twice: json and msgspec would load its last value."""
    store = store_at(tmp_path)
    path = store.save(some_state("ES1"))
    text = path.read_text()
    if layout == "older":
        doc = json.loads(text)
        for name in ("schema_version", "session", "config_id", "events_applied", "no_trade_next", "source_offsets"):
            doc.pop(name)
        text = json.dumps(doc)
        assert store.load_file(_written(path, text)).upgraded_from_legacy  # loads, as the earlier tool's files do
    found = f'"{key}": '
    assert found in text, (key, text)
    head, _, tail = text.partition(found)
    value = tail.split(",", 1)[0] if key != "07:30" else "[1]"
    _written(path, head + found + value + ", " + found + tail)
    with pytest.raises(CheckpointError) as info:
        store.load_file(path)
    assert str(path) in str(info.value) and f"key {key!r} is given twice" in str(info.value)


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_binary_garbage_is_refused(tmp_path: Path):
    path = tmp_path / "state_ES_ES1.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CheckpointError, match="state_ES_ES1.json"):
        store_at(tmp_path).load_file(path)


def test_a_file_for_another_stream_under_this_streams_name(tmp_path: Path):
    store = store_at(tmp_path)
    store.save(some_state("ES2"))
    (tmp_path / "state_ES_ES2.json").rename(tmp_path / "state_ES_ES1.json")
    with pytest.raises(CheckpointError, match="ES2"):
        store.load("ES1", "ES")


# --- the seed's older layout ----------------------------------------------------------------

# 13 peaks (a full default window); sorted: 1 2 3 4 5 6 7 8 9 12 30 40 50 -> 7th = 7 < base 10
LOW_WINDOW = [5, 6, 7, 8, 9, 4, 3, 12, 2, 1, 30, 40, 50]
# sorted: 1 2 3 4 5 6 11 12 13 14 30 40 50 -> 7th = 11 >= 10
HIGH_WINDOW = [5, 6, 11, 12, 13, 4, 3, 14, 2, 1, 30, 40, 50]


def legacy_doc(**changes) -> dict:
    """A state file as the desk's earlier state manager wrote it (SPEC 7)."""
    doc = {
        "stream": "ES1",
        "instrument": "ES",
        "saved_at": "2025-01-15T18:03:11.120000",
        "rolling_median_window": LOW_WINDOW,
        "median_ladder_window": LOW_WINDOW,
        "time_slot_histories": {"07:30": [1, -2, 0], "08:00": [1, 1], "09:30": [1, 1, 1]},
        "current_target": 10,
        "current_time": "08:00",
        "last_processed_date": "2025-01-15T00:00:00",
    }
    return mutate(doc, **changes)


def write_legacy(folder: Path, doc: dict) -> Path:
    path = folder / f"state_{doc['instrument']}_{doc['stream']}.json"
    path.write_text(json.dumps(doc, indent=4))
    return path


def test_older_layout_is_upgraded(tmp_path: Path, caplog):
    path = write_legacy(tmp_path, legacy_doc())
    store = store_at(tmp_path)
    with caplog.at_level(logging.WARNING, logger="sequencer"):
        checkpoint = store.load("ES1", "ES")
    s = checkpoint.state
    assert checkpoint.upgraded_from_legacy is True
    assert checkpoint.saved_at == "2025-01-15T18:03:11.120000"
    assert (s.stream, s.instrument, s.session, s.config_id) == ("ES1", "ES", "S1", CONFIG.config_id)
    assert s.last_processed_date == "2025-01-15"  # the timestamp's date part
    assert s.events_applied == 0 and dict(s.source_offsets) == {}
    assert list(s.rolling_median_window) == LOW_WINDOW == list(s.median_ladder_window)
    # 09:30 is not an S1 slot: dropped with a warning; 09:00 had no history: empty
    assert dict(s.time_slot_histories) == {"07:30": (1, -2, 0), "08:00": (1, 1), "09:00": ()}
    assert any("09:30" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)
    assert s.current_time == "08:00" and s.current_target == 10
    # absent optional fields take their initial values: targets base 10, step 0, days 0
    assert (s.rolling_median_target, s.median_ladder_target) == (10, 10)
    assert (s.median_ladder_current_step, s.median_ladder_days_at_level) == (0, 0)
    # full window, median 7 < base 10 -> no_trade_next recomputed as true
    assert s.no_trade_next is True


def test_older_layout_is_written_in_the_current_layout_at_the_next_save(tmp_path: Path):
    path = write_legacy(tmp_path, legacy_doc())
    store = store_at(tmp_path)
    upgraded = store.load("ES1", "ES").state
    assert store.save(upgraded) == path
    doc = json.loads(path.read_text())
    assert set(doc) == SPEC4_KEYS
    assert doc["schema_version"] == 1 and doc["session"] == "S1" and doc["config_id"] == CONFIG.config_id
    assert doc["last_processed_date"] == "2025-01-15" and doc["events_applied"] == 0
    assert doc["no_trade_next"] is True and doc["source_offsets"] == {}
    assert doc["time_slot_histories"] == {"07:30": [1, -2, 0], "08:00": [1, 1], "09:00": []}
    again = store.load("ES1", "ES")
    assert again.upgraded_from_legacy is False and again.state == upgraded


def test_an_upgraded_state_folds_on(tmp_path: Path):
    write_legacy(tmp_path, legacy_doc())
    state = store_at(tmp_path).load("ES1", "ES").state
    same_day = parse_day_event({"stream": "ES1", "date": "2025-01-15", "slots": {"08:00": {"result": "Win"}}}, CONFIG)
    assert apply_day(state, same_day, CONFIG) == (state, None)  # already processed
    next_day = parse_day_event({"stream": "ES1", "date": "2025-01-16",
                                "slots": {"08:00": {"result": "Win", "peak": 100}}}, CONFIG)
    new, decision = apply_day(state, next_day, CONFIG)
    assert decision.traded_slot == "08:00"
    # window drops 5, gains 100: 6 7 8 9 4 3 12 2 1 30 40 50 100; sorted
    # 1 2 3 4 6 7 8 9 12 30 40 50 100 -> 7th = 8 < 10: floor(8/5)*5 = 5 -> base 10
    assert decision.rolling_median == 8 and decision.next_target == 10 and decision.no_trade_next is True
    assert new.events_applied == 1 and new.time_slot_histories["08:00"] == (1, 1, 1)


def test_older_layout_keeps_the_optional_fields_it_has(tmp_path: Path):
    doc = legacy_doc(rolling_median_window=HIGH_WINDOW, median_ladder_window=HIGH_WINDOW,
                     rolling_median_target=10, median_ladder_target=15,
                     median_ladder_current_step=1, median_ladder_days_at_level=4,
                     current_target=10, last_processed_date=None)
    write_legacy(tmp_path, doc)
    s = store_at(tmp_path).load("ES1", "ES").state
    assert (s.rolling_median_target, s.median_ladder_target) == (10, 15)
    assert (s.median_ladder_current_step, s.median_ladder_days_at_level) == (1, 4)
    assert s.last_processed_date is None
    assert s.no_trade_next is False  # median 11 >= base 10


@pytest.mark.parametrize("window, config, expected", [
    (LOW_WINDOW, CONFIG, True),  # full, median 7 < 10
    (HIGH_WINDOW, CONFIG, False),  # full, median 11 >= 10
    (LOW_WINDOW[:12], CONFIG, False),  # 12 < depth 13: warm-up
    (LOW_WINDOW, SequencerConfig(no_trade_on_low_median=False), False),
    # median_position 12 of 13: sorted LOW_WINDOW -> 12th = 40 >= 10
    (LOW_WINDOW, SequencerConfig(median_position=12), False),
    # depth 5, position 3: the window must fit the running depth -> use 5 peaks [5 6 7 8 9] -> 7
    ([5, 6, 7, 8, 9], SequencerConfig(depth=5, median_position=3), True),
])
def test_older_layout_recomputes_no_trade_next(tmp_path: Path, window, config, expected):
    write_legacy(tmp_path, legacy_doc(rolling_median_window=window, median_ladder_window=window))
    assert store_at(tmp_path, config).load("ES1", "ES").state.no_trade_next is expected


def test_older_layout_with_missing_required_fields_is_refused(tmp_path: Path):
    path = write_legacy(tmp_path, legacy_doc(current_time=DROP))
    with pytest.raises(CheckpointError, match="current_time") as info:
        store_at(tmp_path).load_file(path)
    assert str(path) in str(info.value)


def test_older_layout_with_bad_values_is_refused(tmp_path: Path):
    path = write_legacy(tmp_path, legacy_doc(last_processed_date="mid-January"))
    with pytest.raises(CheckpointError, match="last_processed_date"):
        store_at(tmp_path).load_file(path)
    path = write_legacy(tmp_path, legacy_doc(time_slot_histories={"07:30": ["W"]}))
    with pytest.raises(CheckpointError, match="07:30"):
        store_at(tmp_path).load_file(path)


def test_source_offsets_keys_name_topic_and_partition():
    from sequencer.domain import offsets_in_topic, partition_key, split_partition_key

    assert partition_key("sequencer.day-events", 3) == "sequencer.day-events:3"
    assert split_partition_key("sequencer.day-events:11") == ("sequencer.day-events", 11)
    # keys come from state files, which people edit: split on the last ':'
    assert split_partition_key("desk:events:11") == ("desk:events", 11)
    offsets = {"events:0": 5, "events:2": 9, "events.v2:1": 4, "events": 7, "events:x": 1}
    assert offsets_in_topic(offsets, "events") == {0: 5, 2: 9}
    assert offsets_in_topic(offsets, "events.v2") == {1: 4}


def test_a_checkpoint_saved_with_a_bom_and_windows_line_ends_loads(tmp_path: Path):
    # Notepad and PowerShell 5 write UTF-8 with a byte order mark, and CRLF.
    plain = write_legacy(tmp_path, legacy_doc())
    expected = store_at(tmp_path).load("ES1", "ES").state
    plain.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\n", b"\r\n"))
    assert store_at(tmp_path).load("ES1", "ES").state == expected


def test_a_config_file_with_a_bom_loads(tmp_path: Path):
    from sequencer.adapters.files.config_file import load_config

    path = tmp_path / "ladder.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'target_mode = "median_ladder"\r\ndepth = 9\r\nmedian_position = 5\r\n')
    config = load_config(path)
    assert (config.target_mode, config.depth, config.median_position) == ("median_ladder", 9, 5)


# --- checkpoint files that are links -------------------------------------------------------


def test_a_link_whose_target_is_gone_is_refused_not_taken_for_a_new_stream(tmp_path: Path):
    # Checkpoints linked into a volume that is not mounted: the stream was read as
    # having none, and a resume folded its next days onto an empty state.
    store = store_at(tmp_path / "state")
    store.save(some_state("ES1"))
    dangling = store.path_for("ES2", "ES")
    dangling.symlink_to(tmp_path / "unmounted" / "state_ES_ES2.json")
    with pytest.raises(CheckpointError) as refused:
        store.load("ES2", "ES")
    assert str(refused.value) == (f"checkpoint {dangling}: is a symbolic link to {tmp_path / 'unmounted' / 'state_ES_ES2.json'}, "
                                  "which does not exist (a volume not mounted?)")
    loaded, refusals = store.load_all()
    assert list(loaded) == ["ES1"] and [error.path for error in refusals] == [dangling]
    assert store.files() == [store.path_for("ES1", "ES"), dangling]


def test_a_link_to_a_checkpoint_loads_and_a_fifo_is_not_read(tmp_path: Path):
    store = store_at(tmp_path / "state")
    real = store_at(tmp_path / "elsewhere").save(some_state("ES2"))
    store.path_for("ES2", "ES").parent.mkdir(parents=True, exist_ok=True)
    store.path_for("ES2", "ES").symlink_to(real)
    os.mkfifo(store.path_for("NQ1", "NQ"))  # reading it would wait for a writer for ever
    assert store.load("ES2", "ES").state == some_state("ES2")
    assert store.files() == [store.path_for("ES2", "ES")]
