"""Finding records the stream skipped (sequencer/app/input_offsets.py), without a broker."""

import asyncio

from sequencer.app.input_offsets import InputOffsets, PartitionPositions, StallWatch
from sequencer.app.records import SourceRecord


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


class FakeConsumer:
    """The consumer as InputOffsets sees it, recording what it is asked to do."""

    def __init__(self, group=None, positions=None, range_records=None, ends=None, starts=None):
        self.ends = ends or {}
        self.starts = starts or {}
        self.group = group or {}
        self.positions = positions or {}
        self.range_records = range_records or {}
        self.seeks: list[tuple[str, int]] = []
        self.commits: list[dict] = []
        self.ranges_read: list[tuple[str, int, int]] = []

    def assigned(self):
        return sorted(self.positions)

    def highwater(self, tp):
        return self.ends[tp] if tp in self.ends else 10**9

    async def position(self, tp):
        return self.positions[tp]

    async def seek(self, tp, offset):
        self.seeks.append((tp, offset))

    async def commit(self, offsets):
        self.commits.append(dict(offsets))
        return True

    async def group_offsets(self):
        if isinstance(self.group, Exception):
            raise self.group
        return self.group

    async def read_range(self, tp, start, stop):
        self.ranges_read.append((tp, start, stop))
        return self.range_records.get((tp, start), [])

    async def log_start(self, tp):
        return self.starts.get(tp, 0)


def held(**offsets_by_stream):
    from sequencer.domain import SequencerConfig, initial_state

    return lambda: [initial_state(stream, SequencerConfig()).with_source_offsets(offsets)
                    for stream, offsets in offsets_by_stream.items()]


async def test_an_accepted_gap_lets_the_partition_go_on_past_it():
    """Offsets with no record (transaction markers, compaction) are accepted once a
    direct read finds nothing; the partition's records are then folded, each once."""
    consumer = FakeConsumer()
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}))
    batch = [rec(0, 10), rec(0, 11), rec(0, 14), rec(0, 15), rec(1, 3)]
    assert offsets(await guard.without_holes(batch)) == [(0, 10), (0, 11), (1, 3)]
    assert consumer.seeks == [("ev:0", 12)] and consumer.ranges_read == []
    # After the seek the same hole comes back: read directly, it holds nothing.
    again = [rec(0, 14), rec(0, 15)]
    assert offsets(await guard.without_holes(again)) == [(0, 14), (0, 15)]
    assert consumer.ranges_read == [("ev:0", 12, 14)] and consumer.seeks == [("ev:0", 12)]
    assert guard.positions.expected("ev:0") == 16


async def test_a_hole_below_the_log_start_is_counted_as_records_deleted_not_passed_over():
    """Records the broker deleted (retention shorter than the worker's absence) are gone,
    not offsets without records: the partition goes on, and the loss is counted."""
    consumer = FakeConsumer(starts={"ev:0": 14})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}))
    assert offsets(await guard.without_holes([rec(0, 14), rec(0, 15)])) == []
    assert offsets(await guard.without_holes([rec(0, 14), rec(0, 15)])) == [(0, 14), (0, 15)]
    assert guard.records_deleted_unfolded == 4  # offsets 10 to 13
    assert guard.positions.expected("ev:0") == 16


async def test_a_partition_read_from_its_start_counts_what_the_broker_deleted_before_it():
    consumer = FakeConsumer(starts={"ev:0": 5})
    guard = InputOffsets(consumer, held())
    assert offsets(await guard.without_holes([rec(0, 5), rec(0, 6), rec(1, 0)])) == [(0, 5), (0, 6), (1, 0)]
    assert guard.records_deleted_unfolded == 5
    await guard.without_holes([rec(0, 7)])  # learned once: not counted again
    assert guard.records_deleted_unfolded == 5


async def test_offsets_without_records_above_the_log_start_are_not_counted_as_deleted():
    consumer = FakeConsumer(starts={"ev:0": 11})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 12}))
    await guard.without_holes([rec(0, 14)])
    assert offsets(await guard.without_holes([rec(0, 14)])) == [(0, 14)]
    assert guard.records_deleted_unfolded == 0


async def test_a_hole_that_comes_back_after_a_seek_is_folded_as_read_from_the_log():
    """Seeking again and again was seen to go on for minutes (the stream kept
    handing over what lay past the hole): the second time, the hole's records
    are read directly and folded in offset order, before the batch's own."""
    consumer = FakeConsumer(range_records={("ev:0", 12): [rec(0, 13), rec(0, 12), rec(0, 14)]})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 12}))
    assert offsets(await guard.without_holes([rec(0, 14), rec(0, 15), rec(1, 0)])) == [(1, 0)]
    assert consumer.seeks == [("ev:0", 12)]
    # The same hole again: 12 and 13 from the log (14 lies past the hole: the batch's own is taken).
    assert offsets(await guard.without_holes([rec(0, 14), rec(0, 15)])) == [(0, 12), (0, 13), (0, 14), (0, 15)]
    assert consumer.ranges_read == [("ev:0", 12, 14)] and consumer.seeks == [("ev:0", 12)]
    assert guard.rewinds == 1 and guard.positions.expected("ev:0") == 16
    # Delivered late after all, they are below the expected offset: kept as redeliveries
    # (the states skip them), never a hole again.
    assert offsets(await guard.without_holes([rec(0, 12), rec(0, 16)])) == [(0, 12), (0, 16)]
    assert consumer.seeks == [("ev:0", 12)]


async def test_records_before_the_hole_stay_first_when_it_is_read_from_the_log():
    consumer = FakeConsumer(range_records={("ev:0", 12): [rec(0, 12)]})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}))
    assert offsets(await guard.without_holes([rec(0, 10), rec(0, 11), rec(0, 13)])) == [(0, 10), (0, 11)]
    assert offsets(await guard.without_holes([rec(0, 13), rec(0, 14)])) == [(0, 12), (0, 13), (0, 14)]


async def test_the_committed_offset_covers_records_no_state_names():
    # ES1's state stops at 3; the worker committed 5 (records 3 and 4 were
    # dead letters). A restart goes on from 5 without seeking back.
    consumer = FakeConsumer(group={"ev:0": 5})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 3}))
    assert offsets(await guard.without_holes([rec(0, 5), rec(0, 6)])) == [(0, 5), (0, 6)]
    assert consumer.seeks == []
    # Without the group's offsets (broker error), the states alone decide.
    consumer = FakeConsumer(group=ConnectionError("down"))
    guard = InputOffsets(consumer, held(ES1={"ev:0": 3}))
    assert await guard.without_holes([rec(0, 5), rec(0, 6)]) == []
    assert consumer.seeks == [("ev:0", 3)]


async def test_a_state_only_its_checkpoint_holds_has_its_tail_read_again():
    """The group committed 50, ES1's table state is at 50, but ES2 is not in the
    table and its checkpoint stops at 20: its table value was lost. Going on
    from 50 would leave ES2 at its checkpoint for good, or fold later days onto
    it with those between missing. The partition is read again from 20; ES1's
    state skips what it folded already (the processor's redelivery check)."""
    consumer = FakeConsumer(group={"ev:0": 50})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 50}), checkpoint_only=held(ES2={"ev:0": 20}))
    assert await guard.without_holes([rec(0, 50), rec(0, 51)]) == []
    assert consumer.seeks == [("ev:0", 20)] and guard.checkpoint_tails_read == 1
    again = [rec(0, offset) for offset in range(20, 53)]
    assert await guard.without_holes(again) == again
    assert consumer.seeks == [("ev:0", 20)] and guard.positions.expected("ev:0") == 53


async def test_checkpoints_level_with_the_partition_or_elsewhere_change_nothing():
    consumer = FakeConsumer(group={"ev:0": 50})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 50}),
                         checkpoint_only=held(ES2={"ev:0": 50}, NQ1={"ev:1": 3}, NQ2={}))
    assert offsets(await guard.without_holes([rec(0, 50)])) == [(0, 50)]
    assert consumer.seeks == [] and guard.checkpoint_tails_read == 0
    # Nothing known of a partition (no commit, no table state): read from where
    # the group starts, as without checkpoints.
    consumer = FakeConsumer()
    guard = InputOffsets(consumer, held(), checkpoint_only=held(ES2={"ev:0": 20}))
    assert offsets(await guard.without_holes([rec(0, 0)])) == [(0, 0)]
    assert consumer.seeks == []


async def test_commits_only_what_moved_on():
    consumer = FakeConsumer()
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}))
    await guard.commit_folded(guard.folded_up_to({"ev:0"}))  # nothing folded yet: nothing to commit
    await guard.settled()
    assert consumer.commits == []
    kept = await guard.without_holes([rec(0, 10), rec(0, 11)])
    await guard.commit_folded(guard.folded_up_to({r.partition_key for r in kept}))
    await guard.settled()
    await guard.commit_folded(guard.folded_up_to({"ev:0"}))
    await guard.settled()
    assert consumer.commits == [{"ev:0": 12}]


async def test_a_stalled_partition_is_sought_back_after_two_looks():
    consumer = FakeConsumer(positions={"ev:0": 20, "ev:1": 7})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}, ES2={"ev:1": 7}))
    await guard.check_stalls(batches=4, idle=lambda: True)
    assert consumer.seeks == []
    await guard.check_stalls(batches=4, idle=lambda: True)
    assert consumer.seeks == [("ev:0", 10)]
    guard.forget()
    consumer.seeks.clear()
    await guard.check_stalls(batches=4, idle=lambda: True)
    await guard.check_stalls(batches=5, idle=lambda: True)  # a batch came in between
    assert consumer.seeks == []


async def test_offsets_past_the_partitions_end_belong_to_a_replaced_log():
    # States (and the group) remember a log that ended at 3829; the broker now
    # holds a new one of 160 records. Nothing is a hole, and the commit follows
    # the new log instead of jumping to the old end.
    consumer = FakeConsumer(group={"ev:0": 3829}, ends={"ev:0": 160})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 3829}))
    assert offsets(await guard.without_holes([rec(0, 0), rec(0, 1)])) == [(0, 0), (0, 1)]
    await guard.commit_folded(guard.folded_up_to({"ev:0"}))
    await guard.settled()
    assert consumer.seeks == [] and consumer.commits == [{"ev:0": 2}]


async def test_a_partition_is_learned_only_once_its_end_is_known():
    consumer = FakeConsumer(positions={"ev:0": 20}, ends={"ev:0": None})
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}))
    await guard.check_stalls(batches=1, idle=lambda: True)
    assert not guard.positions.knows("ev:0")
    consumer.ends["ev:0"] = 20
    await guard.check_stalls(batches=1, idle=lambda: True)
    assert guard.positions.expected("ev:0") == 10


class SlowCommits(FakeConsumer):
    """A group coordinator that answers a commit only when the test says so."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.answer = asyncio.Event()
        self.active = 0
        self.most_active = 0
        self.fail_next = False

    async def commit(self, offsets):
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await self.answer.wait()
            if self.fail_next:
                self.fail_next = False
                raise ConnectionError("coordinator gone")
            return await super().commit(offsets)
        finally:
            self.active -= 1


async def test_the_next_batch_does_not_wait_for_the_commit_and_commits_stay_in_order():
    consumer = SlowCommits()
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}))
    await guard.without_holes([rec(0, 10), rec(0, 11)])
    await asyncio.wait_for(guard.commit_folded(guard.folded_up_to({"ev:0"})), 1.0)  # returns with the answer still out
    await guard.without_holes([rec(0, 12)])
    await asyncio.wait_for(guard.commit_folded(guard.folded_up_to({"ev:0"})), 1.0)
    assert consumer.commits == []
    consumer.answer.set()
    await guard.settled()
    assert consumer.commits == [{"ev:0": 12}, {"ev:0": 13}]  # one at a time, in batch order
    assert consumer.most_active == 1 and guard.committed == {"ev:0": 13}


async def test_a_failed_background_commit_is_committed_by_the_next_batch():
    consumer = SlowCommits()
    consumer.answer.set()
    consumer.fail_next = True
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}))
    await guard.without_holes([rec(0, 10)])
    await guard.commit_folded(guard.folded_up_to({"ev:0"}))
    await guard.settled()
    assert consumer.commits == [] and guard.committed == {}
    await guard.commit_folded(guard.folded_up_to({"ev:0"}))  # nothing new folded, yet the offset was never committed
    await guard.settled()
    assert consumer.commits == [{"ev:0": 11}]


async def test_a_commit_answered_after_a_rebalance_is_not_taken_for_the_new_assignment():
    consumer = SlowCommits()
    guard = InputOffsets(consumer, held(ES1={"ev:0": 10}))
    await guard.without_holes([rec(0, 10)])
    await guard.commit_folded(guard.folded_up_to({"ev:0"}))
    guard.forget()  # partitions revoked meanwhile
    consumer.answer.set()
    await guard.settled()
    assert consumer.commits == [{"ev:0": 11}] and guard.committed == {}
