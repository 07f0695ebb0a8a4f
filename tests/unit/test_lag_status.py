"""Lag states (Burrow's rules over a window of samples), freshness in trading days, and
the decision latency's matching and quantiles: pure functions, checked by hand and by
properties."""

from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

from sequencer.app.lag_report import TailDates, compute_lag, stream_and_date, true_ends
from sequencer.app.lag_status import LagWindow, OffsetSample, Status, group_status, partition_status
from sequencer.app.latency import DecisionLatency, matched_record_times, quantile
from sequencer.app.records import SourceRecord
from sequencer.app.monitoring import freshness_rows, lag_document, prometheus_text, readiness, worker_status_lines

WINDOW = 60.0


def samples(*rows: tuple[float, int | None, int], activity: int | None = None) -> list[OffsetSample]:
    return [OffsetSample(at, committed, lag, activity) for at, committed, lag in rows]


def status(rows: list[OffsetSample], now: float | None = None, members: int | None = 1) -> Status:
    return partition_status(rows, now=rows[-1].at if now is None else now, window_s=WINDOW, members=members)


def test_no_lag_is_ok_whatever_came_before() -> None:
    assert status(samples((0, 10, 5), (30, 5, 9), (60, 20, 0)), members=0) is Status.OK


def test_lag_without_members_is_err() -> None:
    assert status(samples((0, None, 40)), members=0) is Status.ERR
    assert status(samples((0, None, 40)), members=None) is Status.OK  # unknown members: one sample says nothing


def test_an_offset_moving_back_is_rewind() -> None:
    assert status(samples((0, 50, 3), (5, 20, 33), (10, 25, 28))) is Status.REWIND


def test_offset_standing_still_for_a_window_is_stop_or_stall() -> None:
    still = [(0, 40, 5), (30, 40, 5), (61, 40, 5)]
    assert status(samples(*still)) is Status.STOP  # no activity known: outside the worker
    worked = [OffsetSample(at, c, lag, activity) for (at, c, lag), activity in zip(still, (3, 7, 12))]
    assert status(worked) is Status.STALL  # batches keep being handled, the offset does not move
    idle = [OffsetSample(at, c, lag, 3) for at, c, lag in still]
    assert status(idle) is Status.STOP
    # Half a window of standing still proves nothing yet.
    assert status(samples((0, 40, 5), (30, 40, 5))) is Status.OK


def test_lag_growing_at_every_sample_is_warn_even_while_offsets_move() -> None:
    assert status(samples((0, 10, 5), (10, 12, 8), (20, 15, 8), (30, 20, 12))) is Status.WARN
    assert status(samples((0, 10, 5), (10, 12, 8), (20, 19, 4), (30, 20, 12))) is Status.OK  # it went down once
    assert status(samples((0, 10, 5), (10, 20, 5))) is Status.OK


def test_samples_before_the_window_do_not_count_except_the_one_it_starts_from() -> None:
    rows = samples((0, 90, 5), (100, 10, 5), (130, 20, 5), (161, 30, 5))
    assert status(rows) is Status.OK  # the rewind at 100 is older than the window [101, 161] and its start
    assert status(rows[:3], now=130) is Status.REWIND


def test_the_group_is_as_bad_as_its_worst_partition() -> None:
    assert group_status([Status.OK, Status.STALL, Status.WARN]) is Status.STALL
    assert group_status([]) is Status.OK
    assert [s.name for s in sorted(Status)] == ["OK", "REWIND", "WARN", "STALL", "STOP", "ERR"]


sample_lists = st.lists(st.tuples(st.floats(0, 500, allow_nan=False), st.one_of(st.none(), st.integers(0, 50)),
                                  st.integers(0, 20), st.one_of(st.none(), st.integers(0, 5))),
                        min_size=1, max_size=12)


@given(sample_lists, st.lists(st.tuples(st.floats(0, 500), st.integers(0, 50), st.integers(0, 20)), max_size=5),
       st.sampled_from([None, 0, 1, 3]))
def test_samples_older_than_the_window_start_never_change_the_status(rows, older, members) -> None:
    rows = sorted(rows, key=lambda r: r[0])
    kept = [OffsetSample(at, c, lag, a) for at, c, lag, a in rows]
    now = kept[-1].at
    # Anything older than the newest sample before the window is forgotten.
    cut = now - WINDOW
    anchor = max((s.at for s in kept if s.at < cut), default=None)
    if anchor is None:
        return
    extra = [OffsetSample(min(at, anchor) - 1, c, lag) for at, c, lag in older]
    with_old = sorted(extra, key=lambda s: s.at) + kept
    assert (partition_status(with_old, now=now, window_s=WINDOW, members=members)
            is partition_status(kept, now=now, window_s=WINDOW, members=members))


@given(sample_lists, st.sampled_from([None, 0, 1]))
def test_a_partition_without_lag_now_is_ok_and_a_lagging_one_without_members_is_err(rows, members) -> None:
    kept = [OffsetSample(at, c, lag, a) for at, c, lag, a in sorted(rows, key=lambda r: r[0])]
    got = partition_status(kept, now=kept[-1].at, window_s=WINDOW, members=members)
    if kept[-1].lag == 0:
        assert got is Status.OK
    elif members == 0:
        assert got is Status.ERR


def test_lag_window_keeps_only_the_window_and_drops_vanished_partitions() -> None:
    window = LagWindow(10.0)
    for at in range(0, 40, 5):
        window.add(float(at), {0: (100, 3), 1: (7, 0)}, members=1)
    assert [s.at for s in window.samples[0]] == [20.0, 25.0, 30.0, 35.0]  # 20: the window's start point
    assert window.statuses(35.0) == {0: Status.STOP, 1: Status.OK}
    window.add(40.0, {0: (101, 2)}, members=1)
    assert set(window.samples) == {0}


def test_true_end_is_the_larger_of_list_offsets_and_the_fetch_high_watermark() -> None:
    assert true_ends({0: 1, 1: 8, 2: 0}, {0: 10, 1: 8, 2: None}) == {0: 10, 1: 8, 2: 0}
    report = compute_lag("g", "t", {0: 10}, {0: 0}, true_ends({0: 1}, {0: 10}), members=1)
    assert report.partitions[0].lag == 0 and report.partitions[0].note == ""


def test_stream_and_date_of_day_event_bytes() -> None:
    import json

    import msgpack

    assert stream_and_date(msgpack.packb({"stream": "ES1", "date": "2025-01-15", "slots": {}})) == ("ES1", "2025-01-15")
    assert stream_and_date(json.dumps({"stream": "NQ2", "date": "2025-01-15T00:00:00"}).encode()) == ("NQ2", "2025-01-15")
    for bad in (b"\xc1", None, msgpack.packb([1]), msgpack.packb({"stream": "E S", "date": "2025-01-15"}),
                msgpack.packb({"stream": "ES1", "date": "15/01/2025"}), msgpack.packb({"stream": "ES1"})):
        assert stream_and_date(bad) is None


def _tail(**dates: list[str]) -> TailDates:
    tail = TailDates()
    for stream, days in dates.items():
        tail.dates[stream] = set(days)
        tail.partition_of[stream] = 0
    return tail


def test_freshness_counts_distinct_trading_dates_after_the_last_decided_one() -> None:
    rows = [{"stream": "ES1", "last_processed_date": "2025-01-14", "age_days": 3},
            {"stream": "NQ1", "last_processed_date": "2025-01-16", "age_days": 1}]
    # ES1: 01-14 was folded but not committed yet; 01-15 twice (a re-publish) counts once.
    tail = _tail(ES1=["2025-01-14", "2025-01-15", "2025-01-17"], CL1=["2025-01-10", "2025-01-13"])
    got = {r["stream"]: r for r in freshness_rows(rows, tail)}
    assert (got["ES1"]["last_published_date"], got["ES1"]["last_decided_date"], got["ES1"]["days_behind"]) == \
        ("2025-01-17", "2025-01-14", 2)
    # Nothing of NQ1 unconsumed: all its records were consumed, it is up to date.
    assert (got["NQ1"]["last_published_date"], got["NQ1"]["days_behind"]) == ("2025-01-16", 0)
    # Published, never decided: an entry all the same.
    assert got["CL1"] == {"stream": "CL1", "last_processed_date": None, "age_days": None,
                          "last_published_date": "2025-01-13", "last_decided_date": None, "days_behind": 2}
    unknown = freshness_rows(rows, None)
    assert all(r["days_behind"] is None and r["last_published_date"] is None for r in unknown)
    assert [r["last_decided_date"] for r in unknown] == ["2025-01-14", "2025-01-16"]


def test_lag_document_carries_statuses_latency_and_the_truncation_note() -> None:
    report = compute_lag("g", "t", {0: 5, 1: 9}, {0: 0, 1: 0}, {0: 8, 1: 9}, members=1)
    tail = _tail(ES1=["2025-01-02"])
    tail.truncated, tail.records = True, 3
    doc = lag_document(report, topic="t", group="g", rate=None, rate_source=None,
                       streams=[{"stream": "ES1", "last_processed_date": "2025-01-01", "age_days": 9}],
                       measured_at="x", statuses={0: Status.WARN, 1: Status.OK}, status_window_s=60.0,
                       latency={"p50": 0.01, "p99": 0.02, "decisions": 4}, tail=tail)
    assert doc["status"] == "WARN" and [p["status"] for p in doc["partitions"]] == ["WARN", "OK"]
    assert doc["members"] == 1 and doc["decision_latency"]["p99"] == 0.02
    assert doc["streams"][0]["days_behind"] == 1
    assert any("lower bound" in note for note in doc["notes"])
    bare = lag_document(None, topic="t", group="g", rate=None, rate_source=None, measured_at="x", error="down")
    assert bare["status"] is None and bare["decision_latency"] is None


def test_readiness_reasons() -> None:
    assert readiness(assigned=2, rebalancing=False, recovering=False) is None
    assert "rebalancing" in readiness(assigned=2, rebalancing=True, recovering=False)
    assert "recovered" in readiness(assigned=2, rebalancing=False, recovering=True)
    assert "no partition" in readiness(assigned=0, rebalancing=False, recovering=False)


def test_decisions_are_matched_to_their_streams_last_records() -> None:
    records = [("ES1", 1.0), ("NQ1", 2.0), ("ES1", 3.0), (None, 4.0), ("ES1", 5.0), ("CL1", None)]
    # ES1 gave two decisions: its first record was a re-delivery.
    assert sorted(matched_record_times(["ES1", "NQ1", "ES1", "CL1"], records)) == [2.0, 3.0, 5.0]
    assert matched_record_times([], records) == []


class _Decided:
    def __init__(self, stream: str) -> None:
        self.stream = stream


_keys = st.sampled_from([b"ES1", b"NQ1", b"", None, b"\xff\xfe"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_keys, st.one_of(st.none(), st.integers(-5, 10**13))), max_size=40),
       st.lists(st.sampled_from(["ES1", "NQ1", "CL1"]), max_size=20))
def test_a_batchs_latencies_are_those_of_its_decisions_matched_records(rows, decided):
    """observe_sent reads the records' key bytes and millisecond times as they are; what it
    observes is what matched_record_times gives over the decoded keys and seconds."""
    records = [SourceRecord("t", 0, offset, key, b"", ms) for offset, (key, ms) in enumerate(rows)]
    latency = DecisionLatency()
    latency.observe_sent([_Decided(stream) for stream in decided], records, sent_at=2e10)
    times = [(r.key.decode(errors="replace") if r.key else None, r.timestamp_ms / 1000 if r.timestamp_ms else None)
             for r in records]
    expected = [max(2e10 - created, 0.0) for created in matched_record_times(decided, times)] if decided else []
    assert sorted(latency.recent) == sorted(expected)


@given(st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=200), st.sampled_from([0.5, 0.9, 0.99, 1.0]))
def test_quantile_is_the_nearest_rank(values, q) -> None:
    got = quantile(values, q)
    rank = math.ceil(round(q * len(values), 9))
    assert got in values
    assert sum(v <= got for v in values) >= rank
    assert sum(v < got for v in values) < rank


def test_latency_histogram_in_the_metrics_text_parses_and_counts() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    class Decision:
        def __init__(self, stream):
            self.stream = stream

    latency = DecisionLatency()
    latency.observe_sent([Decision("ES1"), Decision("NQ1")],
                         [SourceRecord("t", 0, 0, b"ES1", b"", 100_000), SourceRecord("t", 0, 1, b"NQ1", b"", 100_050)],
                         sent_at=100.08)
    summary = latency.summary()
    assert summary["decisions"] == 2 and math.isclose(summary["p50"], 0.03) and math.isclose(summary["p99"], 0.08)
    report = compute_lag("g", "t", {0: 5}, {0: 0}, {0: 8}, members=1)
    text = prometheus_text(lag=report, counters={}, rate=0.0, checkpoint_ages={}, last_checkpoint_age=None,
                           streams=[], statuses={0: Status.STOP},
                           freshness=[{"stream": "ES1", "days_behind": 2, "last_published_date": "2025-01-17",
                                       "last_decided_date": "2025-01-14"}],
                           latency_text=latency.exposition())
    families = {f.name: f for f in text_string_to_metric_families(text)}
    count = [s for s in families["sequencer_decision_latency_seconds"].samples if s.name.endswith("_count")]
    assert count[0].value == 2
    buckets = {s.labels["le"]: s.value for s in families["sequencer_decision_latency_seconds"].samples
               if s.name.endswith("_bucket")}
    assert buckets["0.05"] == 1 and buckets["0.1"] == 2
    assert families["sequencer_consumer_lag_status"].samples[0].value == Status.STOP
    assert families["sequencer_consumer_group_status"].samples[0].value == Status.STOP
    assert families["sequencer_stream_days_behind"].samples[0].value == 2
    assert families["sequencer_stream_last_published_timestamp"].samples[0].value == 1737072000  # 2025-01-17 UTC


def test_the_repairs_status_counts_and_the_phase_are_prometheus_metrics() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    text = prometheus_text(lag=None, counters={"records": 7}, rate=0.0, checkpoint_ages={},
                           last_checkpoint_age=None, streams=[],
                           worker={"phase": "retrying", "for_s": 12.5, "seeks_back": 3,
                                   "partitions_read_again_for_checkpoints": 1,
                                   "records_deleted_before_folded": 40})
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["sequencer_seeks_back"].type == "counter"
    assert [(s.name, s.value) for s in families["sequencer_seeks_back"].samples] == [("sequencer_seeks_back_total", 3)]
    assert [(s.name, s.value) for s in families["sequencer_partitions_read_again_for_checkpoints"].samples] == [
        ("sequencer_partitions_read_again_for_checkpoints_total", 1)]
    assert [(s.name, s.value) for s in families["sequencer_records_deleted_before_folded"].samples] == [
        ("sequencer_records_deleted_before_folded_total", 40)]
    assert [(s.name, s.value) for s in families["sequencer_records"].samples] == [("sequencer_records_total", 7)]
    phases = {s.labels["phase"]: s.value for s in families["sequencer_worker_phase"].samples}
    assert phases["retrying"] == 1 and sum(phases.values()) == 1 and {"recovering", "folding", "idle"} <= set(phases)
    assert families["sequencer_worker_phase_seconds"].samples[0].value == 12.5


def test_the_lag_text_names_the_worker_phase_and_only_the_incidents_that_happened() -> None:
    assert worker_status_lines(None) == []
    quiet = {"phase": "idle", "reason": None, "for_s": 4.2, "since_last_fold_s": 1.5, "seeks_back": 0,
             "partitions_read_again_for_checkpoints": 0, "checkpoint_write_failures": 0,
             "checkpoints_refused_older": 0}
    assert worker_status_lines(quiet) == ["worker: idle for 4.2 s; last batch folded 1.5 s ago"]
    troubled = {**quiet, "phase": "retrying", "reason": "flush failed; folded again in 2.0 s",
                "since_last_fold_s": None, "partitions_read_again_for_checkpoints": 2, "checkpoint_write_failures": 3}
    assert worker_status_lines(troubled) == [
        "worker: retrying for 4.2 s (flush failed; folded again in 2.0 s)",
        "worker incidents since it started: 2 partitions read again for streams the table lost "
        "(run sequencer verify); 3 checkpoint files not written"]
    lost = {**quiet, "records_deleted_before_folded": 40}
    assert worker_status_lines(lost)[1] == (
        "worker incidents since it started: 40 records deleted by the broker before they were folded "
        "(retention: those days are missing; restore them from files)")
