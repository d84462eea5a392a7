"""One computation at a time, shared by every caller, reused for a moment."""

from __future__ import annotations

import asyncio

import pytest

from ldirector.observe.shared import Shared


class Slow:
    """A computation that waits for the test to let it finish."""

    def __init__(self) -> None:
        self.started = 0
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def __call__(self) -> int:
        self.started += 1
        mine = self.started
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return mine


async def test_callers_share_one_computation_and_reuse_it() -> None:
    now = [0.0]
    slow = Slow()
    shared = Shared(slow, max_age=1.0, clock=lambda: now[0])
    waiting = [asyncio.create_task(shared.get()) for _ in range(20)]
    await asyncio.sleep(0)
    slow.release.set()
    assert await asyncio.gather(*waiting) == [1] * 20
    now[0] = 0.9
    assert await shared.get() == 1  # still fresh
    now[0] = 1.0
    assert await shared.get() == 2  # stale: computed again
    assert slow.started == shared.computed == 2


async def test_a_failure_reaches_every_caller_and_is_not_kept() -> None:
    slow = Slow()
    slow.fail = OSError("no table")
    shared = Shared(slow)
    waiting = [asyncio.create_task(shared.get()) for _ in range(3)]
    await asyncio.sleep(0)
    slow.release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    slow.fail = None
    assert await shared.get() == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_others() -> None:
    slow = Slow()
    shared = Shared(slow)
    gone = asyncio.create_task(shared.get())
    stays = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    slow.release.set()
    assert await stays == 1
    assert gone.cancelled()


async def test_invalidate_starts_afresh_and_close_cancels() -> None:
    slow = Slow()
    shared = Shared(slow)
    first = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    shared.invalidate()  # an operator's change: what is being computed may predate it
    second = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    slow.release.set()
    assert (await first, await second) == (1, 2)
    assert await shared.get() == 2  # the fresh one is kept, not the stale one

    slow.release.clear()
    shared.invalidate()
    pending = asyncio.create_task(shared.get())
    await asyncio.sleep(0)
    await shared.close()
    with pytest.raises(asyncio.CancelledError):
        await pending
