"""Day events as other Kafka clients write them, byte for byte: what the worker
(and verify, rebuild: the same decoder) folds and what it dead-letters."""

from __future__ import annotations

import codecs
import json

from hypothesis import given, settings, strategies as st

from sequencer.app.codecs import EventDecoder
from sequencer.app.processor import EventProcessor
from sequencer.app.records import SourceRecord
from sequencer.domain import SequencerConfig

CONFIG = SequencerConfig()
EVENT = {"stream": "ES1", "instrument": "ES", "session": "S1", "date": "2025-01-15",
         "slots": {"07:30": {"result": "Loss", "peak": 18.25, "direction": "Long"},
                   "08:00": {"result": "Win", "peak": 12.0}}}


def fold(values: list[bytes]):
    processor = EventProcessor(CONFIG, lambda stream: None, latest_date=lambda: "2025-06-30")
    return processor.process([SourceRecord("events", 0, i, b"ES1", v) for i, v in enumerate(values)])


def test_json_with_a_utf8_byte_order_mark_is_folded_as_without_it():
    # .NET (Encoding.UTF8) and PowerShell write one; it was dead-lettered as
    # "malformed msgpack (ExtraData ...)", a reason that misleads its reader.
    plain = json.dumps(EVENT).encode()
    marked = fold([codecs.BOM_UTF8 + plain])
    assert marked.dead_letters == []
    assert marked.decisions == fold([plain]).decisions
    assert marked.states["ES1"].time_slot_histories["07:30"] == (-2,)  # by hand: a Loss scores -2


@settings(max_examples=50, deadline=None)
@given(st.sampled_from([b"", b" ", b"\n", b"\r\n\t "]), st.sampled_from([b"", b"\n", b" \r\n"]),
       st.integers(min_value=0, max_value=2))
def test_a_bom_and_white_space_around_json_change_nothing(before, after, indent):
    plain = json.dumps(EVENT, indent=indent or None).encode()
    decoder = EventDecoder(CONFIG)
    assert decoder.decode(codecs.BOM_UTF8 + before + plain + after) == decoder.decode(plain)


def test_a_bom_before_anything_but_a_json_object_is_still_refused():
    letters = fold([codecs.BOM_UTF8 + b"[1, 2]", codecs.BOM_UTF8, codecs.BOM_UTF8 + codecs.BOM_UTF8 + b"{}"])
    assert len(letters.dead_letters) == 3 and letters.decisions == []
    assert all(letter.reason.startswith("malformed msgpack") for letter in letters.dead_letters)
