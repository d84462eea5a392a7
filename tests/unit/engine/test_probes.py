"""The scheduler running checks as probes (``checks.begin``): no task per check, the same
deadline, wording, slots and load accounting as a check run in a task, and nothing left open
when a check ends, times out, is dropped or the scheduler stops."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import ip_address

import pytest

import checks
from checks.probe import Probe
from checks.types import CheckSpec, ConnectSpec, HttpSpec, Result, Target
from ldirector.core.plan import Job
from ldirector.engine.scheduler import Observation, Scheduler
from tests.support.checkrun import leak_free
from tests.support.httpwire import http_server, page
from tests.support.servers import black_hole, refused_tcp


def target(port: int) -> Target:
    return Target(address=ip_address("127.0.0.1"), port=port)


@contextmanager
def listening() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0), backlog=512) as sock:
        yield sock.getsockname()[1]


def check_tasks() -> list[asyncio.Task[object]]:
    """The scheduler's tasks that run a check."""
    coro = Scheduler._check.__qualname__
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == coro]  # type: ignore[union-attr]


async def test_connect_and_http_checks_run_without_a_task_per_check() -> None:
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    async with http_server(page(b"<html>Test Page</html>")) as web:
        with listening() as port, refused_tcp() as closed:
            jobs = [
                Job(target=target(port), spec=ConnectSpec(), timeout=2, interval=60),
                Job(target=target(closed), spec=ConnectSpec(), timeout=2, interval=60),
                Job(target=target(web.port), spec=HttpSpec(), timeout=2, interval=60),
            ]
            tasks: list[int] = []
            real_begin = checks.begin

            def begin(*args: object) -> Probe | None:
                tasks.append(len(check_tasks()))
                return real_begin(*args)  # type: ignore[arg-type]

            sched = Scheduler(queue, begin=begin, burst_rate=10_000)
            sched.set_jobs(jobs, immediate=jobs)
            seen = [await asyncio.wait_for(queue.get(), 5) for _ in jobs]
            assert not check_tasks()
            await sched.stop()
    by_port = {o.job.target.port: o.result for o in seen}
    assert (by_port[port].ok, by_port[port].reason) == (True, "connected")
    assert (by_port[closed].ok, by_port[closed].reason) == (False, "connection refused")
    assert (by_port[web.port].ok, by_port[web.port].reason) == (True, "HTTP 200 OK")
    assert all(o.result.elapsed > 0 for o in seen)
    # No check ran in a task of its own.
    assert tasks == [0, 0, 0]


async def test_a_probe_that_hangs_times_out_with_the_harness_wording() -> None:
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    sched = Scheduler(queue)
    with black_hole() as port:
        async with leak_free():
            job = Job(target=target(port), spec=ConnectSpec(), timeout=0.3, interval=60)
            sched.set_jobs([job], immediate=[job])
            seen = await asyncio.wait_for(queue.get(), 3)
            await sched.stop()
    assert (seen.result.ok, seen.result.reason) == (False, "timed out after 0.3s")
    assert 0.3 <= seen.result.elapsed < 1.0


async def test_dropping_or_stopping_probes_in_flight_closes_them_and_frees_their_slots() -> None:
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    sched = Scheduler(queue, concurrency=8, burst_rate=10_000)
    with black_hole() as port:
        async with leak_free():
            jobs = [
                Job(target=target(port), spec=ConnectSpec(), timeout=30, interval=60 + i)
                for i in range(8)
            ]
            sched.set_jobs(jobs, immediate=jobs)
            await asyncio.sleep(0.1)
            assert sched._slots.take() is False  # all eight in flight
            sched.set_jobs(jobs[4:])  # four dropped
            assert [sched._slots.take() for _ in range(5)] == [True] * 4 + [False]
            for _ in range(4):
                sched._slots.release()
            await sched.stop()
            assert sched._load._in_flight == 0
    assert queue.empty()


async def test_a_bug_in_a_probe_is_an_internal_error_and_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from checks import connect

    def broken(self: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(connect._Connect, "connected", broken)
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    sched = Scheduler(queue)
    with listening() as port, caplog.at_level(logging.ERROR):
        job = Job(target=target(port), spec=ConnectSpec(), timeout=2, interval=60)
        sched.set_jobs([job], immediate=[job])
        seen = await asyncio.wait_for(queue.get(), 3)
        await sched.stop()
    assert (seen.result.ok, seen.result.reason) == (False, "internal error: KeyError: 'oops'")
    assert any("raised" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_a_check_without_a_probe_runs_in_a_task_as_before() -> None:
    ran: list[CheckSpec] = []

    async def run(where: Target, spec: CheckSpec) -> Result:
        ran.append(spec)
        return Result(True, "ran")

    queue: asyncio.Queue[Observation] = asyncio.Queue()
    sched = Scheduler(queue, run=run, begin=lambda *_: None)
    job = Job(target=target(1), spec=ConnectSpec(), timeout=2, interval=60)
    sched.set_jobs([job], immediate=[job])
    seen = await asyncio.wait_for(queue.get(), 3)
    await sched.stop()
    assert (seen.result.reason, ran) == ("ran", [ConnectSpec()])
