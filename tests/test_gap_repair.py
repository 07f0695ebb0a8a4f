"""Finding records the stream skipped (sequencer/gap_repair.py), without a broker."""

from sequencer.gap_repair import PartitionPositions, StallWatch
from sequencer.processor import SourceRecord


def rec(partition: int, offset: int) -> SourceRecord:
    return SourceRecord("ev", partition, offset, b"ES1", b"")


def offsets(records):
    return [(r.partition, r.offset) for r in records]


def test_unknown_partition_has_no_holes_until_a_state_knows_it():
    positions = PartitionPositions()
    kept, holes = positions.split_at_holes([rec(0, 10), rec(0, 11)])
    assert offsets(kept) == [(0, 10), (0, 11)] and holes == {}
    positions.learn("ev:0", [])
    assert positions.knows("ev:0")
    assert positions.split_at_holes([rec(0, 10)])[1] == {}


def test_a_batch_starting_past_the_states_position_is_a_hole_and_nothing_of_it_is_kept():
    positions = PartitionPositions()
    positions.learn("ev:0", [5, 8, 7])  # furthest stream of the partition: next offset 8
    kept, holes = positions.split_at_holes([rec(0, 12), rec(0, 13)])
    assert kept == [] and holes == {"ev:0": (8, 12)}


def test_redelivered_records_below_the_position_are_not_holes():
    positions = PartitionPositions()
    positions.learn("ev:0", [8])
    kept, holes = positions.split_at_holes([rec(0, 6), rec(0, 7), rec(0, 8)])
    assert holes == {} and offsets(kept) == [(0, 6), (0, 7), (0, 8)]


def test_records_before_a_hole_are_kept_and_other_partitions_go_on():
    positions = PartitionPositions()
    positions.learn("ev:0", [0])
    positions.learn("ev:1", [0])
    records = [rec(0, 0), rec(1, 0), rec(0, 1), rec(0, 4), rec(1, 1), rec(0, 5), rec(1, 2)]
    kept, holes = positions.split_at_holes(records)
    assert holes == {"ev:0": (2, 4)}
    assert offsets(kept) == [(0, 0), (1, 0), (0, 1), (1, 1), (1, 2)]


def test_advance_and_accepted_gaps_move_the_position_and_forget_clears_it():
    positions = PartitionPositions()
    positions.learn("ev:0", [3])
    positions.advance([rec(0, 3), rec(0, 4)])
    assert positions.expected("ev:0") == 5
    assert positions.split_at_holes([rec(0, 6)])[1] == {"ev:0": (5, 6)}
    positions.accept_gap("ev:0", 6)  # offset 5 holds no record
    assert positions.split_at_holes([rec(0, 6)]) == ([rec(0, 6)], {})
    positions.forget()
    assert not positions.knows("ev:0")
    assert positions.split_at_holes([rec(0, 100)])[1] == {}


def test_stall_needs_the_same_picture_twice():
    watch = StallWatch()
    assert not watch.observe("ev:0", 10, 20, batches=3)
    assert watch.observe("ev:0", 10, 20, batches=3)
    # a batch in between (records were only waiting in the buffer): not stalled
    assert not watch.observe("ev:1", 10, 20, batches=3)
    assert not watch.observe("ev:1", 10, 20, batches=4)
    # caught up, or the position unknown: never stalled
    assert not watch.observe("ev:2", 20, 20, batches=1)
    assert not watch.observe("ev:2", 20, 20, batches=1)
    assert not watch.observe("ev:3", None, 20, batches=1)
    assert not watch.observe("ev:3", None, 20, batches=1)


def test_an_accepted_gap_lets_the_partition_go_on_past_it():
    """Offsets with no record (transaction markers, compaction) are accepted once a
    direct read finds nothing; the partition's records are then folded, each once."""
    positions = PartitionPositions()
    positions.learn("ev:0", [10])
    batch = [rec(0, 10), rec(0, 11), rec(0, 14), rec(0, 15), rec(1, 3)]
    kept, holes = positions.split_at_holes(batch)
    assert holes == {"ev:0": (12, 14)} and offsets(kept) == [(0, 10), (0, 11), (1, 3)]
    positions.accept_gap("ev:0", 14)
    again, holes = positions.split_at_holes(r for r in batch if r.partition == 0)
    assert holes == {} and offsets(again) == [(0, 10), (0, 11), (0, 14), (0, 15)]
    positions.advance(again)
    assert positions.expected("ev:0") == 16
