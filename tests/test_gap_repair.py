"""Hole detection in delivered records (sequencer/gap_repair.py), without a broker."""

from sequencer.gap_repair import PartitionPositions
from sequencer.processor import SourceRecord


def rec(partition: int, offset: int) -> SourceRecord:
    return SourceRecord("ev", partition, offset, b"ES1", b"")


def test_unknown_partition_has_no_holes_until_a_state_knows_it():
    positions = PartitionPositions()
    assert positions.holes([rec(0, 10), rec(0, 11)]) == []
    positions.learn("ev:0", [])
    assert positions.knows("ev:0")
    assert positions.holes([rec(0, 10)]) == []


def test_a_batch_starting_past_the_states_position_is_a_hole():
    positions = PartitionPositions()
    positions.learn("ev:0", [5, 8, 7])  # furthest stream of the partition: next offset 8
    assert positions.holes([rec(0, 12), rec(0, 13)]) == [("ev:0", 8, 12)]


def test_redelivered_records_below_the_position_are_not_holes():
    positions = PartitionPositions()
    positions.learn("ev:0", [8])
    assert positions.holes([rec(0, 6), rec(0, 7), rec(0, 8)]) == []


def test_jumps_inside_a_batch_are_holes_per_partition():
    positions = PartitionPositions()
    positions.learn("ev:0", [0])
    positions.learn("ev:1", [0])
    records = [rec(0, 0), rec(1, 0), rec(0, 1), rec(0, 4), rec(1, 1), rec(1, 3)]
    assert positions.holes(records) == [("ev:0", 2, 4), ("ev:1", 2, 3)]


def test_advance_moves_the_position_and_forget_clears_it():
    positions = PartitionPositions()
    positions.learn("ev:0", [3])
    positions.advance([rec(0, 3), rec(0, 4)])
    assert positions.holes([rec(0, 6)]) == [("ev:0", 5, 6)]
    positions.forget()
    assert not positions.knows("ev:0")
    assert positions.holes([rec(0, 100)]) == []
