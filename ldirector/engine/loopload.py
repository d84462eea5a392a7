"""How far behind the event loop runs: the overload watch and the stall detector in one.

Every check, timer and signal shares the daemon's one loop. Two things follow from how late
that loop runs, and one measurement serves both:

- **Overload.** When more checks are due than the process can run, the loop falls behind: a
  reply that arrived on time waits in the kernel until the loop gets to it, and a check could
  time out on ldirector's own slowness rather than the server's. The scheduler asks this watch
  whether the loop is calm enough to start another check (``must_wait``) and how far behind it
  fell while a check ran (``worst_since``), so that a timeout the loop caused is not taken as
  the server's.
- **Stalls.** A blocking call (a check that forgot to await, a huge synchronous computation)
  delays everything at once. Lateness past ``stall`` is logged with its size and counted for
  ``status`` and ``/metrics``.

It measures by timers that ask to run at a set time and note how late they ran, on the loop's
own clock, not the engine's (which tests may move by hand), since it measures the real loop.
While checks are in flight or waiting, one samples every ``period``; an idle daemon is woken
only once every ``idle_period``, which still notices a stall that holds the loop over one of
those wake-ups (a check in flight is sampled by the first timer whatever it does).
"""

from __future__ import annotations

import asyncio
import collections
import logging

from ldirector.observe.snapshot import Counters

log = logging.getLogger(__name__)

#: How often the loop is sampled while checks run (seconds).
PERIOD = 0.05
#: How often it is sampled otherwise: what an idle daemon pays to notice a stall.
IDLE_PERIOD = 1.0
#: A loop running later than this is behind: new checks wait for it to catch up.
BEHIND = 0.05
#: A loop running later than this has stalled: something blocked the daemon's one thread.
STALL = 0.25
#: Samples kept: enough to cover the longest check timeout at one sample per period.
KEEP = 4096
#: Waiting checks let go at the first calm sample; each calm sample after it lets go that many
#: more, each late one halves it: a backlog drains as fast as the loop keeps up, not all at once
#: (which would put the loop behind again at once).
RELEASE = 32
MAX_RELEASE = 4096


class LoopLoad:
    """Samples the running loop's lateness: often while checks are in flight or waiting to
    start, seldom otherwise; counts stalls into ``counters``."""

    def __init__(
        self,
        *,
        period: float = PERIOD,
        behind: float = BEHIND,
        idle_period: float = IDLE_PERIOD,
        stall: float = STALL,
        counters: Counters | None = None,
    ) -> None:
        self.period = period
        self.threshold = behind
        self.idle_period = idle_period
        self.stall = stall
        self.counters = counters or Counters()
        #: The lateness of the last sample taken while checks ran.
        self.lateness = 0.0
        #: (loop time, lateness) of recent samples taken while checks ran, oldest first.
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=KEEP)
        self._in_flight = 0
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_due = 0.0
        #: Loop time of the frequent sampler's last sample.
        self._sampled = 0.0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._batch = RELEASE

    @property
    def behind(self) -> bool:
        return self.lateness > self.threshold

    @property
    def must_wait(self) -> bool:
        """A check about to start waits: the loop is behind, or others wait before it."""
        return self.behind or bool(self._waiters)

    def started(self) -> None:
        """A check started: sample often while any runs."""
        self._in_flight += 1
        self._sampling()

    def finished(self) -> None:
        self._in_flight -= 1
        timer = self._timer
        if self._in_flight or self._waiters or timer is None:
            return
        # Nothing left to watch closely: no wake-up for it. A sample already due stays, as it
        # measures a check that held the loop until it finished.
        if self._due > asyncio.get_running_loop().time():
            timer.cancel()
            self._timer = None
            self.lateness = 0.0

    def _sampling(self) -> None:
        if self._timer is None:
            loop = asyncio.get_running_loop()
            self._due = loop.time() + self.period
            self._timer = loop.call_at(self._due, self._sample)
        if self._idle_timer is None:
            self._watch_idle()

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
        self.lateness = lateness = max(0.0, now - self._due)
        self._samples.append((now, lateness))
        self._sampled = now
        self._stalled(lateness)
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

    def _watch_idle(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle_due = loop.time() + self.idle_period
        self._idle_timer = loop.call_at(self._idle_due, self._idle_sample)

    def _idle_sample(self) -> None:
        # A sample of the frequent sampler taken since this one was due saw the same lateness.
        if self._timer is None and self._sampled < self._idle_due:
            self._stalled(max(0.0, asyncio.get_running_loop().time() - self._idle_due))
        self._watch_idle()

    def _stalled(self, lateness: float) -> None:
        if lateness < self.stall:
            return
        counters = self.counters
        counters.stalls += 1
        counters.stall_max = max(counters.stall_max, lateness)
        log.warning(
            "event loop stalled for %.3f s (something blocked the daemon; checks ran late)",
            lateness,
        )

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
        for timer in (self._timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._idle_timer = None
        self.lateness = 0.0
        self._release(len(self._waiters))
