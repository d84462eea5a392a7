"""Time, injected: the scheduler and the engine ask a ``Clock`` instead of the event loop.

``MonotonicClock`` is the daemon's; ``ldirector.testing.FakeClock`` lets a test run minutes
of schedule in milliseconds by advancing virtual time by hand.
"""

from __future__ import annotations

import asyncio
import contextvars
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
