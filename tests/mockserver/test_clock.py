"""The virtual clock, with a fake wall clock: no test here waits on real time."""

from __future__ import annotations

import asyncio
import math

import pytest

from nanobanana_mock.engine.clock import MAX_TIME, ClockStopped, VirtualClock


class FakeWall:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_frozen_clock_moves_only_when_advanced() -> None:
    wall = FakeWall()
    clock = VirtualClock(speed=0, wall=wall)
    wall.t += 50
    assert clock.now() == 0.0
    assert clock.advance(2.5) == 2.5
    assert clock.now() == 2.5


def test_speed_scales_wall_time_and_changes_without_a_jump() -> None:
    wall = FakeWall()
    clock = VirtualClock(speed=10, wall=wall)
    wall.t += 1.5
    assert clock.now() == pytest.approx(15.0)
    clock.set_speed(2)
    assert clock.now() == pytest.approx(15.0)
    wall.t += 1
    assert clock.now() == pytest.approx(17.0)
    clock.advance(3)
    assert clock.now() == pytest.approx(20.0)


@pytest.mark.parametrize("bad", [-1, float("nan")])
def test_time_only_moves_forward(bad: float) -> None:
    clock = VirtualClock()
    with pytest.raises(ValueError):
        clock.advance(bad)
    with pytest.raises(ValueError):
        clock.set_speed(bad)


async def test_sleepers_wake_when_the_clock_reaches_their_deadline() -> None:
    clock = VirtualClock(speed=0)
    woke: list[float] = []

    async def sleeper(deadline: float) -> None:
        await clock.sleep_until(deadline)
        woke.append(deadline)

    tasks = [asyncio.ensure_future(sleeper(d)) for d in (5, 10)]
    await clock.wait_for_sleepers(2)
    clock.advance(4)
    await asyncio.sleep(0)
    assert woke == [] and clock.sleepers == 2
    clock.advance(1)
    await asyncio.wait_for(tasks[0], 5)
    assert woke == [5] and clock.sleepers == 1
    clock.advance(100)
    await asyncio.wait_for(tasks[1], 5)
    assert woke == [5, 10] and clock.sleepers == 0


async def test_wait_change_returns_at_the_next_move_a_missed_one_or_the_deadline() -> None:
    clock = VirtualClock(speed=0)
    moves = clock.moves
    waiter = asyncio.ensure_future(clock.wait_change(moves, math.inf))
    await clock.wait_for_sleepers(1)
    clock.advance(0.5)  # any move, not only one that reaches a deadline
    await asyncio.wait_for(waiter, 5)
    assert clock.sleepers == 0
    await asyncio.wait_for(clock.wait_change(moves, math.inf), 5)  # moved since: at once
    await asyncio.wait_for(clock.wait_change(clock.moves, 0.5), 5)  # the deadline is past
    running = VirtualClock(speed=1000)
    await asyncio.wait_for(running.wait_change(running.moves, running.now() + 2), 5)
    assert running.now() >= 2
    waiter = asyncio.ensure_future(clock.wait_change(clock.moves, math.inf))
    await clock.wait_for_sleepers(1)
    clock.stop()  # a reset: the waiter is told, and so is any later one
    for waiting in (waiter, clock.wait_change(clock.moves, math.inf)):
        with pytest.raises(ClockStopped):
            await asyncio.wait_for(waiting, 5)


async def test_a_running_clock_wakes_sleepers_by_itself() -> None:
    clock = VirtualClock(speed=1000)  # 1 virtual second is 1 ms of wall time
    await asyncio.wait_for(clock.sleep_until(clock.now() + 2), 5)
    assert clock.now() >= 2


def test_a_running_clock_moves_to_the_maximum_time_when_asked() -> None:
    """ "to" reads the time once: read twice, a running clock moved between the reads and a
    move to the maximum was refused as "asked to advance 1e+10"."""
    ticks = iter(range(0, 1000, 1))
    clock = VirtualClock(speed=1000.0, wall=lambda: next(ticks) / 1000)
    assert clock.advance_to(MAX_TIME) >= MAX_TIME
    with pytest.raises(ValueError, match=r"only moves forward \(now"):
        clock.advance_to(5)
    fresh = VirtualClock(speed=0)
    with pytest.raises(ValueError, match="asked to go to 2e\\+10"):
        fresh.advance_to(2 * MAX_TIME)
    with pytest.raises(ValueError, match="only moves forward"):
        fresh.advance_to(float("nan"))
