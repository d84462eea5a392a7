"""FakeClock: virtual time wakes sleepers in order and only when advanced."""

from __future__ import annotations

import asyncio

import pytest

from ldirector.engine.clock import MonotonicClock
from ldirector.testing import FakeClock


async def test_fake_clock_wakes_in_deadline_order() -> None:
    clock = FakeClock(start=100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(sleeper("late", 30))
        tg.create_task(sleeper("early", 10))
        await clock.settle()
        assert clock.pending == 2 and clock.next_deadline() == 110.0
        await clock.advance(9.5)
        assert woke == [] and clock.now() == 109.5
        await clock.advance(3600)
    assert woke == [("early", 110.0), ("late", 130.0)]
    assert clock.now() == 3709.5


async def test_fake_clock_skips_cancelled_sleepers() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5))
    await clock.settle()
    task.cancel()
    await clock.settle()
    assert clock.pending == 0
    await clock.advance(10)
    assert task.cancelled()


async def test_monotonic_clock_sleeps() -> None:
    clock = MonotonicClock()
    before = clock.now()
    await clock.sleep(0.01)
    assert clock.now() - before >= 0.009


async def test_fake_clock_timers_run_in_order_with_sleepers() -> None:
    clock = FakeClock()
    fired: list[tuple[str, float]] = []

    def fire(name: str) -> None:
        fired.append((name, clock.now()))

    async def sleeper() -> None:
        await clock.sleep(2)
        fired.append(("sleeper", clock.now()))

    clock.call_at(3, fire, "late")
    clock.call_at(1, fire, "early")
    clock.call_at(2.5, fire, "cancelled").cancel()
    task = asyncio.create_task(sleeper())
    await clock.settle()
    assert clock.pending == 3 and clock.next_deadline() == 1
    await clock.advance(10)
    await task
    assert fired == [("early", 1), ("sleeper", 2), ("late", 3)]
    assert clock.pending == 0


async def test_monotonic_clock_timer_fires_and_cancels() -> None:
    clock = MonotonicClock()
    fired = asyncio.Event()
    clock.call_at(clock.now() + 0.01, fired.set)
    clock.call_at(clock.now() + 0.01, pytest.fail, "a cancelled timer fired").cancel()
    await asyncio.wait_for(fired.wait(), 1)
    await asyncio.sleep(0.02)
