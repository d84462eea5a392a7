"""The scheduler: cadence, jitter, rotation, timeouts, errors, the cap, hung-check isolation."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import resource
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_address

import pytest

from checks.types import CheckSpec, ConnectSpec, FtpSpec, HttpSpec, Result, SimpleTcpSpec, Target
from ldirector.core.health import CheckKind
from ldirector.core.plan import Job
from ldirector.engine.clock import MonotonicClock
from ldirector.engine.scheduler import Observation, Scheduler, Slots, run_check
from ldirector.testing import FakeClock


def target(port: int = 80, host: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(host), port=port)


def drain(queue: asyncio.Queue[Observation]) -> list[Observation]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


class Recorder:
    """A check runner that answers from a script and records when it was called."""

    def __init__(self, clock: FakeClock, ok: bool = True) -> None:
        self.clock = clock
        self.ok = ok
        self.calls: list[tuple[float, Target, CheckSpec]] = []

    async def __call__(self, t: Target, spec: CheckSpec) -> Result:
        self.calls.append((self.clock.now(), t, spec))
        return Result(self.ok, "ok" if self.ok else "refused")


async def test_cadence_is_per_probe_with_random_offset() -> None:
    clock = FakeClock()
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    runner = Recorder(clock)
    sched = Scheduler(queue, clock=clock, run=runner, rng=random.Random(7))
    fast = Job(target=target(1), spec=ConnectSpec(), timeout=5, interval=2)
    slow = Job(target=target(2), spec=ConnectSpec(), timeout=5, interval=10)
    sched.set_jobs([fast, slow])
    await clock.advance(100)
    await sched.stop()
    fast_times = [t for t, tg, _ in runner.calls if tg.port == 1]
    slow_times = [t for t, tg, _ in runner.calls if tg.port == 2]
    assert 0 <= fast_times[0] < 2 and 0 <= slow_times[0] < 10
    assert all(b - a == pytest.approx(2) for a, b in itertools.pairwise(fast_times))
    assert all(b - a == pytest.approx(10) for a, b in itertools.pairwise(slow_times))
    assert len(fast_times) == 50 and len(slow_times) == 10
    obs = drain(queue)
    assert len(obs) == 60 and all(o.result.ok and o.started == o.scheduled for o in obs)


async def test_offsets_spread_checks_out() -> None:
    clock = FakeClock()
    runner = Recorder(clock)
    sched = Scheduler(asyncio.Queue(), clock=clock, run=runner, rng=random.Random(1))
    sched.set_jobs(
        Job(target=target(p), spec=ConnectSpec(), timeout=5, interval=10) for p in range(1, 101)
    )
    await clock.advance(9.99)
    await sched.stop()
    firsts = sorted(t for t, _, _ in runner.calls)
    assert len(firsts) == 100 and len(set(firsts)) == 100  # no lock-step
    assert firsts[0] < 1 and firsts[-1] > 9


async def test_immediate_probes_run_at_once_and_set_probes_keeps_existing() -> None:
    clock = FakeClock()
    runner = Recorder(clock)
    sched = Scheduler(asyncio.Queue(), clock=clock, run=runner)
    a = Job(target=target(1), spec=ConnectSpec(), timeout=5, interval=10)
    b = Job(target=target(2), spec=ConnectSpec(), timeout=5, interval=10)
    sched.set_jobs([a], immediate=[a])
    await clock.advance(0)
    assert [c[0] for c in runner.calls] == [0.0]
    await clock.advance(4)
    sched.set_jobs([a, b], immediate=[a, b])  # a keeps its cadence: not re-run now
    await clock.advance(0)
    assert [(c[0], c[1].port) for c in runner.calls] == [(0.0, 1), (4.0, 2)]
    # The run after an immediate one is 0.5 to 1.5 intervals later, then every interval.
    await clock.advance(26)
    a_times = [c[0] for c in runner.calls if c[1].port == 1]
    b_times = [c[0] for c in runner.calls if c[1].port == 2]
    assert 5 <= a_times[1] < 15 and 9 <= b_times[1] < 19
    assert a_times[2] - a_times[1] == pytest.approx(10)
    sched.set_jobs([b])
    calls = len(runner.calls)
    await clock.advance(20)
    assert sched.jobs == {b}
    assert [c[1].port for c in runner.calls[calls:]] == [2, 2]
    await sched.stop()


async def test_combined_rotation_picks_the_spec_and_its_timeout() -> None:
    clock = FakeClock()
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    runner = Recorder(clock)
    http = HttpSpec(request="/health")
    probe = Job(
        target=target(),
        spec=http,
        timeout=30,
        interval=1,
        combined=2,
        connect_spec=ConnectSpec(),
        connect_timeout=5,
    )
    assert probe.spec_for(CheckKind.CONNECT) == (ConnectSpec(), 5)
    assert probe.spec_for(CheckKind.NEGOTIATE) == (http, 30)
    sched = Scheduler(queue, clock=clock, run=runner)
    sched.set_jobs([probe], immediate=[probe])
    await clock.advance(6.5)
    await sched.stop()
    assert [type(s).__name__ for _, _, s in runner.calls] == [
        "HttpSpec",
        "ConnectSpec",
        "ConnectSpec",
        "HttpSpec",
        "ConnectSpec",
        "ConnectSpec",
        "HttpSpec",
    ]
    assert [o.kind for o in drain(queue)][:4] == [
        CheckKind.NEGOTIATE,
        CheckKind.CONNECT,
        CheckKind.CONNECT,
        CheckKind.NEGOTIATE,
    ]


async def test_timeout_becomes_a_failed_result() -> None:
    async def hang(t: Target, spec: CheckSpec) -> Result:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    result = await run_check(hang, target(), ConnectSpec(), 0.05, MonotonicClock())
    assert (result.ok, result.reason) == (False, "timed out after 0.05s")
    late = await run_check(hang, target(), ConnectSpec(), 0.01, MonotonicClock())
    assert late.reason == "timed out after 0.01s"


async def test_a_timed_out_check_is_recorded_with_the_time_it_took() -> None:
    async def hang(t: Target, spec: CheckSpec) -> Result:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    result = await run_check(hang, target(), ConnectSpec(), 2, MonotonicClock())
    assert not result.ok and 1.9 <= result.elapsed < 3


async def test_a_check_that_let_a_timeout_escape_is_a_bug_not_our_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def leaky(_target: Target, _spec: CheckSpec) -> Result:
        raise TimeoutError("socket timed out")

    with caplog.at_level(logging.ERROR):
        result = await run_check(leaky, target(), ConnectSpec(), 5, MonotonicClock())
    assert (result.ok, result.reason) == (False, "internal error: TimeoutError('socket timed out')")
    assert "let a timeout escape" in caplog.text and "Traceback" in caplog.text


async def test_a_reason_from_a_server_is_redacted_and_made_safe_once() -> None:
    async def hostile(_target: Target, _spec: CheckSpec) -> Result:
        return Result(False, "530 bad password hunter2\x1b[2J\r\x9b\u2028done")

    spec = FtpSpec(login="bob", passwd="hunter2")
    result = await run_check(hostile, target(), spec, 5, MonotonicClock())
    assert result.reason == "530 bad password ********\\x1b[2J\\x0d\\x9b\\u2028done"


async def test_exception_is_logged_and_recorded(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(t: Target, spec: CheckSpec) -> Result:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR, logger="ldirector.engine.scheduler"):
        result = await run_check(broken, target(), ConnectSpec(), 1, MonotonicClock())
    assert (result.ok, result.reason) == (False, "internal error: ValueError: boom")
    assert "Traceback" in caplog.text and "ValueError: boom" in caplog.text


async def test_cancellation_is_not_swallowed() -> None:
    started = asyncio.Event()

    async def hang(t: Target, spec: CheckSpec) -> Result:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    task = asyncio.create_task(run_check(hang, target(), ConnectSpec(), 60, MonotonicClock()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_concurrency_cap() -> None:
    running = 0
    peak = 0
    done = 0

    async def slow(t: Target, spec: CheckSpec) -> Result:
        nonlocal running, peak, done
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        done += 1
        return Result(True, "ok")

    queue: asyncio.Queue[Observation] = asyncio.Queue()
    sched = Scheduler(queue, run=slow, concurrency=3)
    probes = [
        Job(target=target(p), spec=ConnectSpec(), timeout=1, interval=60) for p in range(1, 11)
    ]
    sched.set_jobs(probes, immediate=probes)
    for _ in range(10):
        await queue.get()
    await sched.stop()
    assert peak == 3 and done == 10


# --- a hung check never delays another -------------------------------------------------------
# Real sockets on loopback: BLACK_HOLES listeners accept and never answer; one healthy
# listener answers "PONG" until it is switched to fail. The check runner is a simple
# line protocol, standing in for any negotiate check.

BLACK_HOLES = 1000  # the figure: each holds three descriptors while it hangs


def enough_descriptors(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(count, hard), hard))


async def ping_pong(t: Target, spec: CheckSpec) -> Result:
    reader, writer = await asyncio.open_connection(str(t.address), t.port)
    try:
        writer.write(b"PING\n")
        await writer.drain()
        line = await reader.readline()
        return Result(line == b"PONG\n", line.decode().strip() or "closed")
    finally:
        writer.close()


@asynccontextmanager
async def listeners(count: int) -> AsyncIterator[list[int]]:
    hung: set[asyncio.StreamWriter] = set()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.add(writer)

    servers = [await asyncio.start_server(never_answer, "127.0.0.1", 0) for _ in range(count)]
    try:
        yield [s.sockets[0].getsockname()[1] for s in servers]
    finally:
        for w in hung:
            w.close()
        for s in servers:
            s.close()
            await s.wait_closed()


async def test_black_holed_reals_do_not_delay_a_failing_healthy_one() -> None:
    enough_descriptors(3 * BLACK_HOLES + 256)
    answer = b"PONG\n"

    async def healthy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(healthy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    sched = Scheduler(queue, run=ping_pong)
    spec = SimpleTcpSpec(request="PING")
    async with listeners(BLACK_HOLES) as holes:
        dead = [Job(target=target(p), spec=spec, timeout=3, interval=0.5) for p in holes]
        good = Job(target=target(port), spec=spec, timeout=3, interval=0.2)
        sched.set_jobs([*dead, good], immediate=[*dead, good])
        await asyncio.sleep(0.6)  # every black hole now holds a check open
        answer = b"FAIL\n"
        failed_at = time.monotonic()
        obs = await asyncio.wait_for(queue.get(), timeout=5)
        while obs.job != good or obs.result.ok:
            obs = await asyncio.wait_for(queue.get(), timeout=5)
        detected = time.monotonic() - failed_at
        await sched.stop()
    server.close()
    await server.wait_closed()
    # Serially, 1,000 black holes at 3 s each would hold the healthy check up for 50 minutes;
    # run side by side, its failure is seen within about one interval.
    assert detected < 1.5
    assert obs.result.reason == "FAIL"


async def test_slots_hand_over_in_order_and_survive_cancelled_waiters() -> None:
    slots = Slots(1)
    order: list[int] = []
    await slots.acquire()

    async def worker(n: int) -> None:
        async with slots:
            order.append(n)

    tasks = [asyncio.create_task(worker(n)) for n in range(5)]
    await asyncio.sleep(0)
    assert slots.waiting == 5
    tasks[1].cancel()  # a waiter that gives up must not leak a slot
    slots.release()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert order == [0, 2, 3, 4]
    # every slot came back: two acquisitions in a row do not wait
    await asyncio.wait_for(slots.acquire(), 1)
    slots.release()


async def test_slot_handed_to_a_task_cancelled_at_the_same_moment_is_passed_on() -> None:
    slots = Slots(1)
    await slots.acquire()
    first = asyncio.create_task(slots.acquire())
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs: the slot goes to `second`
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)
    assert slots.waiting == 0


def cold_start(count: int, interval: float) -> tuple[FakeClock, Recorder, Scheduler]:
    """``count`` probes all to be run at once, under a burst rate of 10 per second."""
    clock = FakeClock()
    runner = Recorder(clock)
    sched = Scheduler(asyncio.Queue(), clock=clock, run=runner, burst_rate=10)
    probes = [
        Job(target=target(p), spec=ConnectSpec(), timeout=5, interval=interval)
        for p in range(1, count + 1)
    ]
    sched.set_jobs(probes, immediate=probes)
    return clock, runner, sched


async def test_cold_start_burst_is_rate_limited() -> None:
    clock, runner, sched = cold_start(20, interval=60)
    await clock.advance(0)
    assert len(runner.calls) == 1  # one now, the others at most 10 per second
    await clock.advance(1.95)
    assert sorted(t for t, _, _ in runner.calls) == pytest.approx([i / 10 for i in range(20)])
    await sched.stop()


async def test_an_overrunning_check_waits_for_its_next_slot() -> None:
    clock = FakeClock()

    async def slow(t: Target, spec: CheckSpec) -> Result:
        starts.append(clock.now())
        await clock.sleep(25)
        return Result(True, "ok, eventually")

    starts: list[float] = []
    sched = Scheduler(asyncio.Queue(), clock=clock, run=slow, rng=random.Random(3))
    sched.set_jobs([Job(target=target(), spec=ConnectSpec(), timeout=60, interval=10)])
    await clock.advance(120)
    await sched.stop()
    # Never back to back: 25 s of check, then the next 10 s slot of its cadence.
    assert [b - a for a, b in itertools.pairwise(starts)] == pytest.approx(
        [30.0] * (len(starts) - 1)
    )
    assert len(starts) >= 3


async def test_a_probe_between_checks_holds_no_task() -> None:
    # 10,000 sleeping tasks kept ~150,000 objects for the garbage collector to walk: a probe
    # waiting for its next run is a clock timer, and a task lives only while its check runs.
    clock = FakeClock()
    runner = Recorder(clock)
    sched = Scheduler(asyncio.Queue(), clock=clock, run=runner, rng=random.Random(5))
    before = len(asyncio.all_tasks())
    probes = [
        Job(target=target(p), spec=ConnectSpec(), timeout=5, interval=10) for p in range(1, 501)
    ]
    sched.set_jobs(probes)
    assert len(asyncio.all_tasks()) == before and clock.pending == 500
    await clock.advance(25)
    assert len(runner.calls) in range(1000, 1501)
    assert len(asyncio.all_tasks()) == before and clock.pending == 500
    sched.set_jobs(probes[:10])  # dropped probes drop their timers
    assert clock.pending == 10
    await sched.stop()
    assert clock.pending == 0


async def test_a_cold_start_too_big_for_the_burst_rate_spreads_over_the_interval() -> None:
    clock, runner, sched = cold_start(200, interval=5)
    await clock.advance(4.99)
    await sched.stop()
    # 200 probes at 10/s would need 20 s: they start evenly within their 5 s interval instead
    # (40/s), not 50 of them spread and the other 150 piled up at 5 s.
    first: dict[int, float] = {}
    for t, tg, _ in runner.calls:
        first.setdefault(tg.port, t)
    assert sorted(first.values()) == pytest.approx([i * 5 / 200 for i in range(200)])
