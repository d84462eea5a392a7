"""How far behind the event loop runs, while checks are in flight.

Every check shares the daemon's one loop. When more checks are due than the process can run,
the loop falls behind: a reply that arrived on time waits in the kernel until the loop gets to
it, and a check could time out on ldirector's own slowness rather than the server's. The
scheduler asks this watch two things: whether the loop is calm enough to start another check
(``must_wait``), and how far behind the loop fell while a check ran (``worst_since``), so that a
timeout the loop caused is not taken as the server's.

It measures by a timer that asks to run every ``period`` seconds and notes how late it ran. The
timer runs only while checks are in flight: an idle daemon is not woken. It uses the loop's own
clock, not the engine's (which tests may move by hand), since it measures the real loop.
"""

from __future__ import annotations

import asyncio
import collections

#: How often the loop is sampled while checks run (seconds).
PERIOD = 0.05
#: A loop running later than this is behind: new checks wait for it to catch up.
BEHIND = 0.05
#: Samples kept: enough to cover the longest check timeout at one sample per period.
KEEP = 4096
#: Waiting checks let go at the first calm sample; each calm sample after it lets go that many
#: more, each late one halves it: a backlog drains as fast as the loop keeps up, not all at once
#: (which would put the loop behind again at once).
RELEASE = 32
MAX_RELEASE = 4096


class LoopLoad:
    """Samples the running loop's lateness while checks are in flight or waiting to start."""

    def __init__(self, *, period: float = PERIOD, behind: float = BEHIND) -> None:
        self.period = period
        self.threshold = behind
        #: The lateness of the last sample.
        self.lateness = 0.0
        #: (loop time, lateness) of recent samples, oldest first.
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=KEEP)
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._due = 0.0
        self._batch = RELEASE

    @property
    def behind(self) -> bool:
        return self.lateness > self.threshold

    @property
    def must_wait(self) -> bool:
        """A check about to start waits: the loop is behind, or others wait before it."""
        return self.behind or bool(self._waiters)

    def started(self) -> None:
        """A check started: sample while any runs."""
        self._in_flight += 1
        self._sampling()

    def _sampling(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._due = loop.time() + self.period
            self._timer = loop.call_at(self._due, self._sample)

    def finished(self) -> None:
        self._in_flight -= 1

    def worst_since(self, since: float) -> float:
        """The largest lateness sampled at or after loop time ``since``."""
        worst = 0.0
        for at, lateness in reversed(self._samples):
            if at < since:
                break
            worst = max(worst, lateness)
        return worst

    async def calm(self) -> None:
        """Return once the loop is not behind, in turn with the other checks waiting."""
        if not self.must_wait:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self._sampling()
        try:
            await waiter
        finally:
            if not waiter.done():
                waiter.cancel()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self.lateness = max(0.0, now - self._due)
        self._samples.append((now, self.lateness))
        if self.behind:
            self._batch = max(RELEASE, self._batch // 2)
        else:
            if self._release(self._batch) == self._batch:  # a backlog: the loop kept up
                self._batch = min(MAX_RELEASE, self._batch + RELEASE)
            elif not self._waiters:
                self._batch = RELEASE
        if self._in_flight > 0 or self._waiters:
            self._due = now + self.period
            self._timer = loop.call_at(self._due, self._sample)
        else:
            self._timer = None
            self.lateness = 0.0

    def _release(self, count: int) -> int:
        """Let go of up to ``count`` waiting checks, oldest first; how many were let go."""
        released = 0
        while released < count and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                released += 1
        return released

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.lateness = 0.0
        self._release(len(self._waiters))
