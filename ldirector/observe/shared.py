"""One snapshot for every reader: built by one task at a time, then reused for a moment.

Sits between the engine and the read side (the control socket's ``status``, ``/status``, ``/``
and ``/metrics``). A snapshot dumps the kernel table and walks every real on the event loop,
and a rendering of thousands of reals takes a thread a good part of a second: twenty scrapers
at once must cost one build and one rendering, not twenty, or the checks run late.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from ldirector.observe.snapshot import Snapshot

T = TypeVar("T")

#: Seconds a snapshot or a rendering is reused after it is ready.
MAX_AGE = 1.0


class SnapshotSource(Protocol):
    """Whatever hands out status snapshots: the engine's adapter, a shared cache, a test."""

    async def snapshot(self) -> Snapshot: ...


class Shared(Generic[T]):
    """A value computed by one task at a time, and reused for ``max_age`` seconds once ready.

    Callers that come while it is being computed wait for that computation; one that is
    cancelled (a client that went away) does not cancel it for the others. A failure is handed
    to everyone waiting and is not kept.
    """

    def __init__(
        self,
        compute: Callable[[], Awaitable[T]],
        *,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._max_age = max_age
        self._clock = clock
        self._value: tuple[float, T] | None = None
        self._task: asyncio.Task[T] | None = None
        #: Bumped by :meth:`invalidate`: a computation started before keeps nothing.
        self._generation = 0
        #: How many computations started: tests (and benchmarks) read it.
        self.computed = 0

    async def get(self) -> T:
        if self._value is not None and self._clock() - self._value[0] < self._max_age:
            return self._value[1]
        task = self._task
        if task is None:
            self.computed += 1
            task = asyncio.create_task(self._run(self._generation), name="shared computation")
            task.add_done_callback(_retrieve)
            self._task = task
        return await asyncio.shield(task)

    def invalidate(self) -> None:
        """Forget the value and any computation under way: the next caller starts afresh
        (after an operator's change, which a reader must see at once)."""
        self._generation += 1
        self._value = None
        self._task = None

    async def close(self) -> None:
        """Cancel a computation under way (the daemon is stopping)."""
        task = self._task
        self.invalidate()
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])

    async def _run(self, generation: int) -> T:
        try:
            value = await self._compute()
        finally:
            if generation == self._generation:
                self._task = None
        if generation == self._generation:
            self._value = (self._clock(), value)
        return value


def _retrieve(task: asyncio.Task[object]) -> None:
    """Mark a failure as seen even when every waiter went away: it was handed to them."""
    if not task.cancelled():
        task.exception()


class SharedSnapshots:
    """A :class:`SnapshotSource` that builds through ``build`` once at a time and reuses the
    result for ``max_age`` seconds."""

    def __init__(
        self,
        build: Callable[[], Awaitable[Snapshot]],
        *,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.shared: Shared[Snapshot] = Shared(build, max_age=max_age, clock=clock)

    async def snapshot(self) -> Snapshot:
        return await self.shared.get()

    def invalidate(self) -> None:
        self.shared.invalidate()

    async def close(self) -> None:
        await self.shared.close()
