"""The future-date rule (SPEC 3) judged by the day a record was produced.

A worker refuses an event dated after today + 1 day; a rebuild of the same log
weeks later must refuse the same record, or the two disagree on the state.
Judging a record by its Kafka timestamp (when earlier than the clock) makes the
outcome a function of the log alone.
"""

import datetime as dt
from types import SimpleNamespace

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from sequencer.domain import SequencerConfig
from sequencer.app.log_fold import _source_record
from sequencer.app.processor import EventProcessor
from sequencer.app.records import SourceRecord

CONFIG = SequencerConfig()
DAY_MS = 86_400_000


def _ms(date: dt.date) -> int:
    return int(dt.datetime(date.year, date.month, date.day, 15, 30, tzinfo=dt.timezone.utc).timestamp() * 1000)


def _event(date: dt.date) -> bytes:
    return msgpack.packb({"stream": "ES1", "date": date.isoformat(),
                          "slots": {"07:30": {"result": "Win", "peak": 12.0}}})


def _outcome(records, clock_today: dt.date):
    latest = (clock_today + dt.timedelta(days=1)).isoformat()
    processor = EventProcessor(CONFIG, lambda stream: None, latest_date=lambda: latest)
    out = processor.process(records)
    return [d.date for d in out.decisions], [(l.record.offset, l.reason) for l in out.dead_letters]


def test_a_rebuild_later_refuses_what_the_worker_refused_when_it_came():
    produced = dt.date(2025, 3, 10)
    records = [SourceRecord("ev", 0, 0, b"ES1", _event(produced), _ms(produced)),
               SourceRecord("ev", 0, 1, b"ES1", _event(produced + dt.timedelta(days=5)), _ms(produced))]
    at_the_time = _outcome(records, clock_today=produced)
    a_year_later = _outcome(records, clock_today=produced + dt.timedelta(days=365))
    assert at_the_time == a_year_later
    decided, letters = a_year_later
    assert decided == ["2025-03-10"]
    assert letters == [(1, "date 2025-03-15 is in the future: the latest accepted is 2025-03-11 "
                           "(today in UTC plus one day of grace)")]


def test_the_clock_still_bounds_a_record_stamped_in_the_future():
    today = dt.date(2025, 3, 10)
    stamped_later = _ms(today + dt.timedelta(days=400))
    records = [SourceRecord("ev", 0, 0, b"ES1", _event(today + dt.timedelta(days=30)), stamped_later)]
    decided, letters = _outcome(records, clock_today=today)
    assert decided == [] and "in the future" in letters[0][1]


def test_records_without_a_usable_timestamp_are_judged_by_the_clock():
    today = dt.date(2025, 3, 10)
    for stamp in (None, 0, -1, 10**18):  # unknown, the epoch marker, librdkafka's -1, past year 9999
        records = [SourceRecord("ev", 0, 0, b"ES1", _event(today + dt.timedelta(days=1)), stamp)]
        assert _outcome(records, clock_today=today) == (["2025-03-11"], []), stamp


def test_the_log_reader_passes_the_record_timestamp_on():
    consumed = SimpleNamespace(topic="ev", partition=2, offset=7, key=b"ES1", value=b"x", timestamp=1_741_600_000_000)
    assert _source_record(consumed).timestamp_ms == 1_741_600_000_000


@settings(max_examples=200, deadline=None)
@given(produced=st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)), ahead=st.integers(-30, 30),
       later=st.integers(0, 3000))
def test_acceptance_depends_on_the_production_day_not_on_when_the_log_is_read(produced, ahead, later):
    records = [SourceRecord("ev", 0, 0, b"ES1", _event(produced + dt.timedelta(days=ahead)), _ms(produced))]
    now = _outcome(records, clock_today=produced)
    assert now == _outcome(records, clock_today=produced + dt.timedelta(days=later))
    assert (now[0] != []) == (ahead <= 1)
