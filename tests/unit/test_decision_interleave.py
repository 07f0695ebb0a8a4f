"""A split replay's decision parts interleaved into one decisions.csv by order keys and row lengths.

Each partition writes its own streams' decisions to a part file and tells
the parent the order key and the byte length of each row
(``file_replay._interleave_decisions``); the parent cuts the rows out as
bytes. The oracle is independent of the cutting: ``csv.writer`` over every
decision, in the order of its key.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings, strategies as st

from sequencer.adapters.files.file_replay import _interleave_decisions
from sequencer.adapters.files.record_files import DecisionCsvWriter
from sequencer.adapters.files.sources import StreamPartition
from tests.unit.test_decision_csv_writer import TEXT, csv_writer_bytes, decisions

# streams of plain names (as replay's are), slots that may need quoting, reasons of any text
LAYOUTS = st.lists(st.tuples(st.sampled_from(["ES1", "NQ2", "CL1", "GC2", "YM1"]), st.just("ES"),
                             st.lists(st.sampled_from(["07:30", "08:00", "09:00"]) | TEXT, min_size=1,
                                      max_size=3, unique=True)),
                   min_size=1, max_size=4, unique_by=lambda layout: layout[0])


@settings(max_examples=150, deadline=None)
@given(LAYOUTS.flatmap(lambda layouts: st.lists(decisions(layouts), max_size=30)),
       st.integers(1, 3), st.randoms(use_true_random=False))
def test_parts_interleave_as_one_writer_in_key_order(tmp_path_factory, rows, jobs, random) -> None:
    folder = tmp_path_factory.mktemp("parts")
    keys = random.sample(range(10 * len(rows) + 1), len(rows))  # distinct, as (date, stream) keys are
    # a partition's decisions come in the order of their keys, as a fold emits them
    by_part: list[list[int]] = [[] for _ in range(jobs)]
    for i in sorted(range(len(rows)), key=keys.__getitem__):
        owner = next(p for p in range(jobs) if StreamPartition(p, jobs).owns(rows[i].stream))
        by_part[owner].append(i)
    parts, orders, lengths = [], [], []
    for index, members in enumerate(by_part):
        part = folder / f"part{index}.csv"
        with part.open("w", newline="", encoding="utf-8") as handle, \
                DecisionCsvWriter(handle, lengths=True) as writer:
            writer.BATCH_ROWS = 4
            for i in members:
                writer.write(rows[i])
        parts.append(part)
        orders.append(np.array([keys[i] for i in members], np.int64))
        lengths.append(writer.lengths)
    target = folder / "decisions.csv"
    assert _interleave_decisions(parts, orders, lengths, target)
    in_key_order = [rows[i] for i in sorted(range(len(rows)), key=keys.__getitem__)]
    assert target.read_bytes() == csv_writer_bytes(in_key_order).encode("utf-8")


def test_lengths_that_disagree_with_a_part_write_nothing(tmp_path: Path) -> None:
    part = tmp_path / "part0.csv"
    part.write_bytes(b"stream,date\r\nES1,2024-01-02\r\nES1,2024-01-03\r\n")
    target = tmp_path / "decisions.csv"
    for lengths in ([16, 15], [16], [16, 16, 1]):
        assert not _interleave_decisions([part], [np.arange(2)], [lengths], target)
        assert not target.exists()
    assert _interleave_decisions([part], [np.array([1, 0])], [[16, 16]], target)
    assert target.read_bytes() == b"stream,date\r\nES1,2024-01-03\r\nES1,2024-01-02\r\n"
