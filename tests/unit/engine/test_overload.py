"""Overload: when ldirector itself runs behind, healthy reals are not timed out by it.

The loop is made to fall behind for real, by callbacks that hold it (``time.sleep``), as a
director with more checks due than its CPU can run does. A check that times out then is not
judged, new checks wait for the loop to catch up, and all of it shows in the counters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from ipaddress import ip_address

import pytest

from checks.types import ConnectSpec, Result, Target
from ldirector.core.plan import Job
from ldirector.engine.loopload import RELEASE, LoopLoad
from ldirector.engine.scheduler import Observation, Scheduler
from ldirector.observe.render import render_text, to_json
from ldirector.observe.snapshot import Counters


def job(port: int, timeout: float = 0.5, interval: float = 60) -> Job:
    return Job(
        target=Target(address=ip_address("127.0.0.1"), port=port),
        spec=ConnectSpec(),
        timeout=timeout,
        interval=interval,
    )


def hog(seconds: float, every: float = 0.06, times: int = 20) -> asyncio.Task[None]:
    """Holds the loop ``seconds`` at a time, ``times`` times: a loop with too much to do."""

    async def run() -> None:
        for _ in range(times):
            time.sleep(seconds)  # noqa: ASYNC251 - blocking the loop is the point here
            await asyncio.sleep(every)

    return asyncio.create_task(run())


def is_behind(load: LoopLoad) -> bool:
    return load.behind  # a call, so that a type checker does not take the property as fixed


async def silent(target: Target, spec: object) -> Result:
    await asyncio.sleep(3600)  # a server that never answers: only the deadline ends this
    return Result(True, "never")


async def test_the_watch_measures_a_loop_held_up_and_sleeps_when_idle() -> None:
    load = LoopLoad()
    load.started()
    time.sleep(0.3)  # noqa: ASYNC251
    await asyncio.sleep(0.01)
    assert load.behind and load.lateness >= 0.2
    assert load.worst_since(0.0) >= 0.2
    for _ in range(40):  # a busy test machine may take a few samples to be calm
        await asyncio.sleep(0.06)
        if is_behind(load) is False:
            break
    assert is_behind(load) is False  # caught up
    load.finished()
    await asyncio.sleep(0.15)
    assert load._timer is None  # nothing in flight, nothing waiting: no wake-ups
    samples = len(load._samples)
    await asyncio.sleep(0.2)
    assert len(load._samples) == samples
    assert load.worst_since(asyncio.get_running_loop().time()) == 0.0


async def test_a_stall_while_a_check_runs_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters = Counters()
    load = LoopLoad(counters=counters)
    load.started()
    time.sleep(0.4)  # noqa: ASYNC251 - a check that forgot to await
    load.finished()  # it ends before the loop gets back to the timer
    await asyncio.sleep(0.01)
    load.close()
    assert counters.stalls == 1 and 0.3 < counters.stall_max < 2.0
    assert "event loop stalled for" in caplog.text


async def test_an_idle_loop_is_woken_seldom_and_a_stall_there_is_still_seen() -> None:
    counters = Counters()
    load = LoopLoad(idle_period=0.1, counters=counters)
    wakes = []
    idle_sample = load._idle_sample

    def counted() -> None:
        wakes.append(asyncio.get_running_loop().time())
        idle_sample()

    load._idle_sample = counted  # type: ignore[method-assign]
    load.started()
    load.finished()
    assert load._timer is None  # nothing in flight: the frequent sampler is off at once
    await asyncio.sleep(0.55)
    assert 3 <= len(wakes) <= 6 and counters.stalls == 0
    time.sleep(0.4)  # noqa: ASYNC251 - a stall between checks, over an idle wake-up
    await asyncio.sleep(0.01)
    load.close()
    assert counters.stalls == 1 and counters.stall_max >= 0.25


async def test_a_stall_both_timers_saw_counts_once() -> None:
    counters = Counters()
    load = LoopLoad(idle_period=0.1, counters=counters)
    load.started()
    time.sleep(0.4)  # noqa: ASYNC251 - over both timers' due times
    load.finished()
    await asyncio.sleep(0.02)
    load.close()
    assert counters.stalls == 1


async def test_the_schedulers_watch_counts_into_its_counters() -> None:
    counters = Counters()

    async def blocking(target: Target, spec: object) -> Result:
        time.sleep(0.4)  # noqa: ASYNC251 - the bug the watch exists to catch
        return Result(True, "ok")

    queue: asyncio.Queue[Observation] = asyncio.Queue()
    sched = Scheduler(queue, run=blocking, counters=counters)
    sched.set_jobs([job(1)], immediate=[job(1)])
    await asyncio.wait_for(queue.get(), 2)
    await asyncio.sleep(0.01)
    await sched.stop()
    assert counters.stalls == 1


async def test_waiting_checks_are_let_go_in_steps_once_the_loop_is_calm() -> None:
    load = LoopLoad()
    load.started()
    time.sleep(0.3)  # noqa: ASYNC251
    await asyncio.sleep(0.01)
    assert load.must_wait
    released: list[int] = []

    async def wait(n: int) -> None:
        await load.calm()
        released.append(n)

    tasks = [asyncio.create_task(wait(n)) for n in range(3 * RELEASE)]
    for _ in range(400):  # until the first calm sample; samples are 50 ms apart
        await asyncio.sleep(0.005)
        if released:
            break
    assert 0 < len(released) <= RELEASE
    await asyncio.wait_for(asyncio.gather(*tasks), 2)
    assert released == sorted(released)  # in the order they came
    load.finished()
    load.close()


async def test_a_timeout_while_the_loop_ran_behind_is_not_judged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    counters = Counters()
    sched = Scheduler(queue, run=silent, counters=counters)
    held = hog(0.3)
    sched.set_jobs([job(1)], immediate=[job(1)])
    with caplog.at_level(logging.WARNING, "ldirector"):
        for _ in range(40):
            await asyncio.sleep(0.05)
            if counters.checks_unjudged:
                break
    held.cancel()
    await sched.stop()
    assert counters.checks_unjudged == 1
    assert queue.empty()  # no observation: the real keeps its last known state
    assert any("checks are running behind" in m for m in caplog.messages)


async def test_a_timeout_on_a_calm_loop_is_the_servers() -> None:
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    counters = Counters()
    sched = Scheduler(queue, run=silent, counters=counters)
    sched.set_jobs([job(1, timeout=1)], immediate=[job(1, timeout=1)])
    observation = await asyncio.wait_for(queue.get(), 3)
    await sched.stop()
    assert (observation.result.ok, observation.result.reason) == (False, "timed out after 1s")
    assert counters.checks_unjudged == 0


async def test_checks_due_while_the_loop_is_behind_wait_and_show_it() -> None:
    queue: asyncio.Queue[Observation] = asyncio.Queue()
    counters = Counters()
    load = LoopLoad()
    calls: list[int] = []

    async def answer(target: Target, spec: object) -> Result:
        calls.append(counters.checks_waiting)
        return Result(True, "ok")

    sched = Scheduler(queue, run=answer, counters=counters, load=load)
    load.started()  # another check in flight, while the loop is held up
    time.sleep(0.3)  # noqa: ASYNC251
    await asyncio.sleep(0.01)
    assert load.behind
    sched.set_jobs([job(1)], immediate=[job(1)])
    for _ in range(3):
        await asyncio.sleep(0)
    assert (counters.checks_waiting, calls) == (1, [])  # due, but waiting for the loop
    load.finished()
    observation = await asyncio.wait_for(queue.get(), 2)
    await sched.stop()
    assert observation.result.ok and calls == [0]
    assert counters.checks_waiting == 0


def test_running_behind_shows_in_status_and_json() -> None:
    from ldirector.observe.snapshot import Snapshot

    snap = Snapshot(
        generated=0.0,
        started=0.0,
        config="x.cf",
        virtuals=(),
        counters=Counters(checks_waiting=12, checks_unjudged=3),
    )
    assert "RUNNING BEHIND: 12 checks waiting to start; 3 timed out" in render_text(snap)
    daemon = to_json(snap)["daemon"]
    assert (daemon["checks_waiting"], daemon["checks_unjudged"]) == (12, 3)
