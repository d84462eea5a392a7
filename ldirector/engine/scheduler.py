"""Runs the checks: cadence, jitter, the concurrency cap, and the one harness (timeout and timing).

Sits between the plan (which says what to check) and the engine (which consumes the
``Observation`` queue). This is the only place that times a check: a check itself never
implements its outer timeout. Every check runs in its own task, so a hung check only ever
holds up itself.

Overload: when more checks are due than the process can run, the loop falls behind. Then new
checks wait to start until it catches up (the schedule slips, visibly: a warning, and
``checks_waiting`` in status and metrics), and a check that timed out while the loop fell
behind by a good part of its timeout is not judged: its real keeps its last known health and is
checked again at its next turn (``checks_unjudged``). Without this, a director with too many
reals for its CPU timed its healthy reals out, every one, and took them all out of the table.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import checks
from checks.types import CheckSpec, Result, Target
from ldirector.core.health import CheckKind, Rotation
from ldirector.core.plan import Job
from ldirector.core.text import clean_reason, secrets_of
from ldirector.core.wording import seconds_text
from ldirector.engine.clock import Clock, MonotonicClock, Timer
from ldirector.engine.loopload import LoopLoad
from ldirector.observe.snapshot import Counters

log = logging.getLogger(__name__)

#: Immediate (cold-start) checks started per second at most.
DEFAULT_BURST_RATE = 500.0
#: A timeout is not judged when the loop fell behind by more than this share of it.
UNJUDGED_SHARE = 0.25
#: At most one "running behind" warning per this many seconds.
BEHIND_WARNING_EVERY = 60.0

CheckRunner = Callable[[Target, CheckSpec], Awaitable[Result]]
if TYPE_CHECKING:
    from checks.probe import Done, Outcome, Probe

    CheckStarter = Callable[[Target, CheckSpec, Done], Probe | None]

#: Generous by default: a black-holed real holds its slot for a whole timeout, and a cap
#: below the number of black holes would let them delay the healthy reals' checks. Each
#: check in flight holds a socket, so the daemon raises RLIMIT_NOFILE to match.
DEFAULT_CONCURRENCY = 4096


@dataclass(frozen=True, slots=True)
class Observation:
    """A result, stamped with the job that produced it, when it was due and when it started.

    ``result.elapsed`` is how long it ran, by the same clock."""

    job: Job
    kind: CheckKind
    result: Result
    scheduled: float
    started: float


async def run_check(
    run: CheckRunner, target: Target, spec: CheckSpec, limit: float, clock: Clock
) -> Result:
    """Run one check for at most ``limit`` seconds and time it; never raises except on
    cancellation. The harness every check run as a coroutine runs under, in the daemon and in
    ``check``; a probe (``checks.begin``) gets the same deadline and the same ``verdict``.
    """
    started = clock.now()
    deadline = asyncio.timeout(limit)
    outcome: Outcome | None
    try:
        async with deadline:
            outcome = await run(target, spec)
    except TimeoutError as exc:
        outcome = None if deadline.expired() else exc
    except Exception as exc:  # a bug in a check must not take the daemon down
        outcome = exc
    return verdict(target, spec, limit, outcome, clock.now() - started)


def verdict(
    target: Target, spec: CheckSpec, limit: float, outcome: Outcome | None, elapsed: float
) -> Result:
    """The result of one check that ran ``elapsed`` seconds; ``outcome`` None: our deadline.

    The time is the clock's from start to finish, so a check that timed out is recorded with the
    time it took, not 0. Our deadline reads ``timed out after 3s``; a TimeoutError a check let
    escape before it, or any other exception, is a bug in that check: ``internal error: ...``
    with the traceback logged. A check's reason comes from a real server, so it is made safe for
    a log line, a terminal and a page here, once, for every consumer.
    """
    weight = None
    if outcome is None:
        ok, reason = False, f"timed out after {seconds_text(limit)}"
    elif isinstance(outcome, Result):
        ok, reason, weight = outcome.ok, outcome.reason, outcome.weight
    elif isinstance(outcome, TimeoutError):
        what = type(spec).__name__
        log.error("check %s of %s let a timeout escape", what, target, exc_info=outcome)
        ok, reason = False, f"internal error: {outcome!r}"
    else:
        log.error("check %s of %s raised", type(spec).__name__, target, exc_info=outcome)
        ok, reason = False, f"internal error: {type(outcome).__name__}: {outcome}"
    return Result(ok, clean_reason(reason, secrets_of(spec)), elapsed, weight)


class Slots:
    """A counting semaphore whose release is O(1) however many tasks wait.

    ``asyncio.Semaphore`` (3.11) scans its waiters on every release; with thousands of checks
    queued at a cold start that scan made the cap itself the bottleneck. Here a released slot
    is handed straight to the oldest live waiter.
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiters if not f.done())

    def take(self) -> bool:
        """A slot now if one is free and nobody waits for one; False otherwise."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self) -> None:
        if self.take():
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
    """One job's running state: its next timer or its check in flight (a task or a probe),
    never two of them."""

    __slots__ = ("due", "job", "probe", "rotation", "spread", "task", "timer")

    def __init__(self, job: Job, *, spread: bool) -> None:
        self.job = job
        self.due = 0.0
        self.rotation = Rotation(job.combined or 0)
        #: The run after an immediate one lands 0.5 to 1.5 intervals later, not in lock-step.
        self.spread = spread
        self.timer: Timer | None = None
        self.task: asyncio.Task[None] | None = None
        self.probe: _Probing | None = None

    def cancel(self) -> asyncio.Task[None] | None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        probing, self.probe = self.probe, None
        if probing is not None:
            probing.cancel()
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
        return task


def _next(track: _Track) -> tuple[CheckKind, CheckSpec, float]:
    """The kind of check the track runs next, its spec and its timeout."""
    job = track.job
    kind = track.rotation.next_kind if job.combined is not None else CheckKind.NEGOTIATE
    spec, timeout = job.spec_for(kind)
    return kind, spec, timeout


class _Probing:
    """A check in flight as a probe: its deadline, and what the scheduler needs when it ends.

    ``done`` is the probe's callback and, with None, the deadline's; whichever comes first
    ends the check and the other is cancelled.
    """

    __slots__ = ("deadline", "kind", "probe", "scheduler", "since", "started", "timeout", "track")

    def __init__(
        self, scheduler: Scheduler, track: _Track, kind: CheckKind, timeout: float, started: float
    ) -> None:
        self.scheduler, self.track, self.kind = scheduler, track, kind
        self.timeout, self.started = timeout, started
        self.since = asyncio.get_running_loop().time()
        self.probe: Probe | None = None
        self.deadline: Timer | None = None

    def done(self, outcome: Outcome | None) -> None:
        if self.track.probe is not self:
            return  # cancelled meanwhile
        self.track.probe = None
        if outcome is None and self.probe is not None:
            self.probe.cancel()
        elif self.deadline is not None:
            self.deadline.cancel()
        self.scheduler._probed(self, outcome)

    def cancel(self) -> None:
        if self.probe is not None:
            self.probe.cancel()
        if self.deadline is not None:
            self.deadline.cancel()
        self.scheduler._release()


class Scheduler:
    """Runs every job on its cadence and feeds their observations to ``queue``.

    A job between checks is one clock timer, and a task exists only while its check runs:
    10,000 sleeping tasks kept ~150,000 short-lived objects that the garbage collector had to
    walk, enough to make checks start late.
    """

    def __init__(
        self,
        queue: asyncio.Queue[Observation],
        *,
        clock: Clock | None = None,
        run: CheckRunner = checks.run,
        begin: CheckStarter | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        rng: random.Random | None = None,
        burst_rate: float = DEFAULT_BURST_RATE,
        counters: Counters | None = None,
        load: LoopLoad | None = None,
    ) -> None:
        self._queue = queue
        self._counters = counters or Counters()
        self._load = load or LoopLoad(counters=self._counters)
        self._warned_at = -math.inf
        self._burst_rate = burst_rate
        self._clock = clock or MonotonicClock()
        self._run = run
        # Probes are checks.run's own fast path: a caller injecting another run gets none
        # unless it injects begin too.
        self._begin = begin if begin is not None or run is not checks.run else checks.begin
        self._slots = Slots(concurrency)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._tracks: dict[Job, _Track] = {}
        self._fire_at_due = self._fire  # one bound method for every timer, not one per timer

    @property
    def jobs(self) -> frozenset[Job]:
        return frozenset(self._tracks)

    def set_jobs(self, jobs: Iterable[Job], *, immediate: Iterable[Job] = ()) -> None:
        """Run exactly ``jobs``: new ones start, missing ones stop, the rest keep their cadence.

        A new job's first run is at a random offset within its interval (so thousands of
        checks do not fire in lock-step). Jobs in ``immediate`` run at once instead, at
        most ``burst_rate`` of them per second (a cold start of 10,000 reals would otherwise
        start 10,000 checks in the same instant), or faster when that is what it takes to
        start them all within their interval, and their second run lands at a random point
        between half and one and a half intervals later, so they do not stay in lock-step
        either.
        """
        ordered = list(dict.fromkeys(jobs))  # input order: deterministic under a seeded rng
        wanted = set(ordered)
        new = [p for p in ordered if p not in self._tracks]
        for job in list(self._tracks):
            if job not in wanted:
                self._tracks.pop(job).cancel()
        now_first = set(immediate)
        first = [p for p in new if p in now_first]
        self._rng.shuffle(first)
        # Capping each offset at the interval instead would start all the jobs past
        # burst_rate * interval in the same instant, at the end of the interval.
        n = len(first)
        offsets = {p: min(i / self._burst_rate, p.interval * i / n) for i, p in enumerate(first)}
        now = self._clock.now()
        for job in new:
            offset = offsets.get(job)
            track = _Track(job, spread=offset is not None)
            self._tracks[job] = track
            if offset is None:
                offset = self._rng.uniform(0, job.interval)
            self._wait(track, now + offset)

    async def stop(self) -> None:
        """Cancel every job and wait for the checks in flight to finish."""
        tracks = list(self._tracks.values())
        self._tracks.clear()
        tasks = [task for track in tracks if (task := track.cancel()) is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._load.close()

    def _release(self) -> None:
        """A probe was cancelled: its slot and its place in the load are free."""
        self._load.finished()
        self._slots.release()

    def _wait(self, track: _Track, due: float) -> None:
        track.due = due
        track.timer = self._clock.call_at(due, self._fire_at_due, track)

    def _fire(self, track: _Track) -> None:
        track.timer = None
        # A check that can run as a probe does so when it can start now; one that must wait
        # for the loop or for a slot waits in a task, as every other check runs.
        if self._begin is not None and not self._load.must_wait and self._slots.take():
            if self._probe(track, self._begin):
                return
            self._slots.release()
        track.task = asyncio.create_task(self._check(track))

    def _probe(self, track: _Track, begin: CheckStarter) -> bool:
        """Start the track's check as a probe (``checks.begin``); False if it has no probe."""
        kind, spec, timeout = _next(track)
        started = self._clock.now()
        probing = _Probing(self, track, kind, timeout, started)
        try:
            probe = begin(track.job.target, spec, probing.done)
        except Exception:  # run as a task, whose harness words the bug
            return False
        if probe is None:
            return False
        probing.probe = probe
        probing.deadline = self._clock.call_at(started + timeout, probing.done, None)
        track.probe = probing
        self._load.started()
        return True

    def _probed(self, probing: _Probing, outcome: Outcome | None) -> None:
        self._load.finished()
        self._slots.release()
        track, started = probing.track, probing.started
        spec, _ = track.job.spec_for(probing.kind)
        elapsed = self._clock.now() - started
        result = verdict(track.job.target, spec, probing.timeout, outcome, elapsed)
        self._ended(track, probing.kind, probing.timeout, result, started, probing.since)

    async def _check(self, track: _Track) -> None:
        kind, spec, timeout = _next(track)
        load, counters = self._load, self._counters
        if load.must_wait:
            counters.checks_waiting += 1
            self._warn_behind()
            try:
                await load.calm()
            finally:
                counters.checks_waiting -= 1
        async with self._slots:
            started = self._clock.now()
            since = asyncio.get_running_loop().time()
            load.started()
            try:
                result = await run_check(self._run, track.job.target, spec, timeout, self._clock)
            finally:
                load.finished()
        track.task = None
        self._ended(track, kind, timeout, result, started, since)

    def _ended(
        self,
        track: _Track,
        kind: CheckKind,
        timeout: float,
        result: Result,
        started: float,
        since: float,
    ) -> None:
        """Judge a finished check (or not, when we were the slow party) and schedule the next."""
        job, due = track.job, track.due
        # A check needs a few turns of the loop (connect, send, read): with each turn at most
        # `worst` late, a timeout well past that is the server's own.
        load = self._load
        worst = load.worst_since(since) if not result.ok and result.elapsed >= timeout else 0.0
        if worst > UNJUDGED_SHARE * timeout:
            # Timed out while ldirector itself was behind: the server may have answered in time.
            self._counters.checks_unjudged += 1
            log.debug(
                "check of %s not judged: the event loop fell %.1f s behind during its %s timeout",
                job.target,
                worst,
                seconds_text(timeout),
            )
            self._warn_behind()
        else:
            if job.combined is not None:
                track.rotation = track.rotation.after(kind, result.ok)
            self._queue.put_nowait(Observation(job, kind, result, due, started))
        # The cadence is counted from the scheduled start, so a slow check does not drift
        # the schedule. A check that overran its slot waits for the next slot of its
        # cadence: restarting at once would keep an overloaded host overloaded.
        step = job.interval
        if track.spread:
            step *= self._rng.uniform(0.5, 1.5)
            track.spread = False
        due += step
        now = self._clock.now()
        if due < now:
            due += math.ceil((now - due) / job.interval) * job.interval
        self._wait(track, due)

    def _warn_behind(self) -> None:
        now = self._clock.now()
        if now - self._warned_at < BEHIND_WARNING_EVERY:
            return
        self._warned_at = now
        log.warning(
            "checks are running behind: more are due than this process can run; %d waiting to "
            "start, %d timed out while ldirector was behind and were not judged (their reals "
            "keep their last known state)",
            self._counters.checks_waiting,
            self._counters.checks_unjudged,
        )
