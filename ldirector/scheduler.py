"""Runs the probes: cadence, jitter, timeouts and the concurrency cap.

Sits between the plan (which says what to probe) and the engine (which consumes the
``Observation`` queue). This is the only place that times a check: a check itself never
implements its outer timeout. Every check runs in its own task, so a hung check only ever
holds up itself.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import checks
from checks.types import CheckSpec, Result, Target
from ldirector.clock import Clock, MonotonicClock, Timer
from ldirector.health import CheckKind, Rotation

log = logging.getLogger(__name__)

#: Immediate (cold-start) checks started per second at most.
DEFAULT_BURST_RATE = 500.0

CheckRunner = Callable[[Target, CheckSpec], Awaitable[Result]]

#: Generous by default: a black-holed real holds its slot for a whole timeout, and a cap
#: below the number of black holes would let them delay the healthy reals' checks. Each
#: check in flight holds a socket, so the daemon raises RLIMIT_NOFILE to match.
DEFAULT_CONCURRENCY = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """One distinct check: what to run against which target, and how often.

    Probes are compared whole, so two virtuals share one only when everything here is
    identical, credentials included (ldirectord shares results across different logins: B9).
    """

    target: Target
    spec: CheckSpec
    #: negotiatetimeout for negotiate checks, checktimeout for connect/ping/external.
    timeout: float
    interval: float
    #: checktype=N: the connect check run between negotiates, and its timeout (checktimeout).
    combined: int | None = None
    connect_spec: CheckSpec | None = None
    connect_timeout: float = 0.0

    def spec_for(self, kind: CheckKind) -> tuple[CheckSpec, float]:
        """The spec and timeout for a check of ``kind``."""
        if kind is CheckKind.CONNECT and self.connect_spec is not None:
            return self.connect_spec, self.connect_timeout
        return self.spec, self.timeout


@dataclass(frozen=True, slots=True)
class Observation:
    """A result, stamped with the probe that produced it, when it was due and when it ran."""

    probe: Probe
    kind: CheckKind
    result: Result
    scheduled: float
    started: float


async def run_once(run: CheckRunner, target: Target, spec: CheckSpec, limit: float) -> Result:
    """Run one check for at most ``limit`` seconds; never raises except on cancellation.

    The rules and wording of ``checks.probe``: our deadline is ``timed out after 3s``; a
    TimeoutError the check let escape before it, or any other exception, is a bug in that
    check, reported as ``internal error: ...``. It does not call ``checks.probe`` because
    the runner is injectable (tests, benchmarks) and a bug's traceback is logged here, while
    ``checks.probe`` keeps the checks package free of logging and returns no traceback.
    """
    deadline = asyncio.timeout(limit)
    try:
        async with deadline:
            return await run(target, spec)
    except TimeoutError as exc:
        if deadline.expired():
            return Result(False, f"timed out after {checks.format_seconds(limit)}")
        log.exception("check %s of %s let a timeout escape", type(spec).__name__, target)
        return Result(False, f"internal error: {exc!r}")
    except Exception as exc:  # a bug in a check must not take the daemon down
        log.exception("check %s of %s raised", type(spec).__name__, target)
        return Result(False, f"internal error: {type(exc).__name__}: {exc}")


class Slots:
    """A counting semaphore whose release is O(1) however many tasks wait.

    ``asyncio.Semaphore`` (3.11) scans its waiters on every release; with thousands of probes
    queued at a cold start that scan made the cap itself the bottleneck. Here a released slot
    is handed straight to the oldest live waiter.
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # a slot was handed over: pass it on
                self.release()
            raise

    def release(self) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class _Track:
    """One probe's running state: its next timer or its check in flight, never both."""

    __slots__ = ("due", "probe", "rotation", "spread", "task", "timer")

    def __init__(self, probe: Probe, *, spread: bool) -> None:
        self.probe = probe
        self.due = 0.0
        self.rotation = Rotation(probe.combined or 0)
        #: The run after an immediate one lands 0.5 to 1.5 intervals later, not in lock-step.
        self.spread = spread
        self.timer: Timer | None = None
        self.task: asyncio.Task[None] | None = None

    def cancel(self) -> asyncio.Task[None] | None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
        return task


class Scheduler:
    """Runs every probe on its cadence and feeds their observations to ``queue``.

    A probe between checks is one clock timer, and a task exists only while its check runs:
    10,000 sleeping tasks kept ~150,000 short-lived objects that the garbage collector had to
    walk, enough to make checks start late.
    """

    def __init__(
        self,
        queue: asyncio.Queue[Observation],
        *,
        clock: Clock | None = None,
        run: CheckRunner = checks.run,
        concurrency: int = DEFAULT_CONCURRENCY,
        rng: random.Random | None = None,
        burst_rate: float = DEFAULT_BURST_RATE,
    ) -> None:
        self._queue = queue
        self._burst_rate = burst_rate
        self._clock = clock or MonotonicClock()
        self._run = run
        self._slots = Slots(concurrency)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._tracks: dict[Probe, _Track] = {}
        self._fire_at_due = self._fire  # one bound method for every timer, not one per timer

    @property
    def probes(self) -> frozenset[Probe]:
        return frozenset(self._tracks)

    def set_probes(self, probes: Iterable[Probe], *, immediate: Iterable[Probe] = ()) -> None:
        """Run exactly ``probes``: new ones start, missing ones stop, the rest keep their cadence.

        A new probe's first run is at a random offset within its interval (so thousands of
        checks do not fire in lock-step, U7). Probes in ``immediate`` run at once instead, at
        most ``burst_rate`` of them per second (a cold start of 10,000 reals would otherwise
        start 10,000 checks in the same instant), or faster when that is what it takes to
        start them all within their interval, and their second run lands at a random point
        between half and one and a half intervals later, so they do not stay in lock-step
        either.
        """
        ordered = list(dict.fromkeys(probes))  # input order: deterministic under a seeded rng
        wanted = set(ordered)
        new = [p for p in ordered if p not in self._tracks]
        for probe in list(self._tracks):
            if probe not in wanted:
                self._tracks.pop(probe).cancel()
        now_first = set(immediate)
        first = [p for p in new if p in now_first]
        self._rng.shuffle(first)
        # Capping each offset at the interval instead would start all the probes past
        # burst_rate * interval in the same instant, at the end of the interval.
        n = len(first)
        offsets = {p: min(i / self._burst_rate, p.interval * i / n) for i, p in enumerate(first)}
        now = self._clock.now()
        for probe in new:
            offset = offsets.get(probe)
            track = _Track(probe, spread=offset is not None)
            self._tracks[probe] = track
            if offset is None:
                offset = self._rng.uniform(0, probe.interval)
            self._wait(track, now + offset)

    async def stop(self) -> None:
        """Cancel every probe and wait for the checks in flight to finish."""
        tracks = list(self._tracks.values())
        self._tracks.clear()
        tasks = [task for track in tracks if (task := track.cancel()) is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    def _wait(self, track: _Track, due: float) -> None:
        track.due = due
        track.timer = self._clock.call_at(due, self._fire_at_due, track)

    def _fire(self, track: _Track) -> None:
        track.timer = None
        track.task = asyncio.create_task(self._check(track))

    async def _check(self, track: _Track) -> None:
        probe, due = track.probe, track.due
        kind = track.rotation.next_kind if probe.combined is not None else CheckKind.NEGOTIATE
        spec, timeout = probe.spec_for(kind)
        async with self._slots:
            started = self._clock.now()
            result = await run_once(self._run, probe.target, spec, timeout)
        if probe.combined is not None:
            track.rotation = track.rotation.after(kind, result.ok)
        self._queue.put_nowait(Observation(probe, kind, result, due, started))
        # The cadence is counted from the scheduled start, so a slow check does not drift
        # the schedule. A check that overran its slot waits for the next slot of its
        # cadence: restarting at once would keep an overloaded host overloaded.
        step = probe.interval
        if track.spread:
            step *= self._rng.uniform(0.5, 1.5)
            track.spread = False
        due += step
        now = self._clock.now()
        if due < now:
            due += math.ceil((now - due) / probe.interval) * probe.interval
        track.task = None
        self._wait(track, due)
