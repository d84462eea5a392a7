"""Time, injected: the scheduler and the engine ask a ``Clock`` instead of the event loop.

``MonotonicClock`` is the daemon's; ``FakeClock`` lets a test run minutes of schedule in
milliseconds by advancing virtual time by hand.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """A callback scheduled with :meth:`Clock.call_at`."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Where the engine gets the time and how it waits."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences mean anything)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock's scale."""
        ...

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> Timer:
        """Call ``callback(*args)`` from the event loop at ``when`` on this clock's scale.

        Cheaper than a task asleep in :meth:`sleep`: the scheduler keeps one per real, and
        a sleeping task keeps a dozen objects alive that the garbage collector walks.
        """
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic`` and ``asyncio.sleep``."""

    def __init__(self) -> None:
        # A clock's timers share one context: each would otherwise copy the caller's (one
        # more object per timer). A context cannot be entered twice at once, so it is one
        # per clock, never shared by two event loops.
        self._context = contextvars.Context()

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> Timer:
        delay = max(0.0, when - time.monotonic())
        loop = asyncio.get_running_loop()
        return loop.call_later(delay, callback, *args, context=self._context)


class _FakeTimer:
    __slots__ = ("args", "callback", "cancelled")

    def __init__(self, callback: Callable[..., object], args: tuple[object, ...]) -> None:
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def done(self) -> bool:
        return self.cancelled


class FakeClock:
    """Virtual time that moves only when a test calls :meth:`advance`.

    Sleepers wake in deadline order, and after each wake-up the event loop is given enough
    turns for the woken task (and whatever it hands work to through queues) to settle before
    the clock moves on, so a scenario is deterministic.
    """

    #: Loop turns granted after each wake-up; a chain probe -> queue -> engine -> backend
    #: needs a handful, this leaves a wide margin and still costs microseconds.
    SETTLE_TURNS = 50

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None] | _FakeTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> Timer:
        timer = _FakeTimer(callback, args)
        heapq.heappush(self._sleepers, (when, next(self._seq), timer))
        return timer

    @property
    def pending(self) -> int:
        """How many sleepers and timers are waiting (cancelled ones excluded)."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    def next_deadline(self) -> float | None:
        """When the earliest live sleeper is due, or None if nobody sleeps."""
        live = [d for d, _, f in self._sleepers if not f.done()]
        return min(live) if live else None

    async def settle(self) -> None:
        """Give the event loop turns until work caused by the last wake-up has run."""
        for _ in range(self.SETTLE_TURNS):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper due on the way."""
        target = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, waiter = heapq.heappop(self._sleepers)
            if waiter.done():  # its sleeper or timer was cancelled
                continue
            self._now = max(self._now, deadline)
            if isinstance(waiter, _FakeTimer):
                waiter.callback(*waiter.args)
            else:
                waiter.set_result(None)
            await self.settle()
        self._now = max(self._now, target)
        await self.settle()
