"""`sequencer.app.membership_watch`: a silence of the worker's loop longer than the
session timeout puts its ownership of partitions in doubt until an assignment."""

from __future__ import annotations

from hypothesis import given, strategies as st

from sequencer.app.membership_watch import MembershipWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ticks_closer_than_the_session_timeout_leave_no_doubt():
    clock = Clock()
    watch = MembershipWatch(6.0, clock)
    watch.tick()
    for _ in range(100):
        clock.now += 0.5
        watch.tick()
        assert watch.doubt() is None
    clock.now += 5.9  # a slow batch, under the timeout
    assert watch.doubt() is None and watch.silences == 0


def test_the_start_before_the_first_tick_is_no_silence():
    clock = Clock()
    watch = MembershipWatch(6.0, clock)
    clock.now += 30.0  # imports, services, the group join
    assert watch.doubt() is None and watch.silences == 0


def test_a_silence_past_the_timeout_is_doubted_until_an_assignment_or_the_settle_time():
    clock = Clock()
    watch = MembershipWatch(6.0, clock)
    watch.tick()
    clock.now += 7.0
    assert "did not run for 7.0 s" in watch.doubt()
    clock.now += 1.0
    assert "has not been assigned partitions since" in watch.doubt()
    watch.assigned()
    assert watch.doubt() is None
    clock.now += 9.0  # another silence; this time no rebalance follows
    watch.tick()
    assert watch.doubt() is not None and watch.silences == 2
    for _ in range(int(watch.settle_s / 0.5) + 1):  # the group kept us: no assignment came
        clock.now += 0.5
        watch.tick()
    assert watch.doubt() is None and watch.silences == 2


@given(st.lists(st.floats(min_value=0.0, max_value=20.0), min_size=1, max_size=40))
def test_doubt_follows_every_silence_past_the_timeout(gaps):
    clock = Clock()
    watch = MembershipWatch(6.0, clock)
    watch.tick()
    for gap in gaps:
        clock.now += gap
        doubted = watch.doubt() is not None
        if gap > 6.0:
            assert doubted
    assert watch.silences == sum(1 for gap in gaps if gap > 6.0)
