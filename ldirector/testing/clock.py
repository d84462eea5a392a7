"""A clock for tests: virtual time that moves only when the test says so."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from ldirector.engine.clock import Timer


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
