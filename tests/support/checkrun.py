"""Running checks the way the scheduler does, and proving they leave nothing behind.

``run_check`` calls :func:`checks.run` under a caller-owned ``asyncio.timeout``, as ldirector's
scheduler does: a check that runs out of time raises ``TimeoutError`` here. The leak helpers
assert that a check leaves no file descriptor, task or thread behind, whether it ended, timed out
or was cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import AsyncIterator
from ipaddress import ip_address
from pathlib import Path

import pytest

import checks
from checks.types import CheckSpec, Result, Target


def target(port: int, host: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(host), port=port)


async def run_check(where: Target, spec: CheckSpec, seconds: float = 10.0) -> Result:
    """``checks.run`` under the caller-owned timeout, as the scheduler calls it."""
    async with asyncio.timeout(seconds):
        return await checks.run(where, spec)


async def timed_check(
    where: Target, spec: CheckSpec, seconds: float = 10.0
) -> tuple[Result, float]:
    """:func:`run_check` and the seconds it took, measured as the scheduler measures them."""
    started = time.monotonic()
    result = await run_check(where, spec, seconds)
    return result, time.monotonic() - started


async def measured_check(
    where: Target, spec: CheckSpec, seconds: float = 10.0
) -> tuple[Result, float, int]:
    """:func:`timed_check`, and the peak of Python memory allocated while it ran, in bytes."""
    tracemalloc.start()
    try:
        result, elapsed = await timed_check(where, spec, seconds)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, elapsed, peak


def open_fds() -> set[str]:
    """This process's open file descriptors, by number."""
    return set(os.listdir("/proc/self/fd"))


def accepted() -> set[str]:
    """Sockets a test's own server in this process accepted: that server closes them when it
    stops (a stalling server holds them on purpose), so they are not a check's leak."""
    listening: set[tuple[object, ...]] = set()
    connected: dict[str, tuple[object, ...]] = {}
    for fd in open_fds():
        try:
            sock = socket.socket(fileno=int(fd))
        except OSError:  # not a socket, or already closed
            continue
        try:
            where = sock.getsockname()
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                listening.add(where[:2])
            elif isinstance(where, tuple):
                connected[fd] = where[:2]
        except OSError:
            pass
        finally:
            sock.detach()
    return {fd for fd, where in connected.items() if where in listening}


def describe_fd(fd: str) -> str:
    try:
        return f"{fd} -> {os.readlink(Path('/proc/self/fd') / fd)}"
    except OSError:
        return fd


async def settle(before_fds: set[str], before_threads: int, limit: float = 2.0) -> None:
    """Let closed transports finish closing (the loop closes sockets on its next iterations) and
    child watcher threads end (each ends once the killed process it waits for is reaped)."""
    end = time.monotonic() + limit
    while time.monotonic() < end and (  # noqa: ASYNC110 - polling /proc and the thread count
        not open_fds() <= before_fds or threading.active_count() > before_threads
    ):
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def leak_free() -> AsyncIterator[None]:
    """Checks run inside must leave no file descriptor, task or thread behind."""
    before_fds, before_threads = open_fds(), threading.active_count()
    yield
    await settle(before_fds, before_threads)
    leaked = sorted(open_fds() - before_fds - accepted())
    assert not leaked, f"file descriptors left open: {[describe_fd(fd) for fd in leaked]}"
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    assert not tasks, f"tasks left running: {tasks}"
    assert threading.active_count() <= before_threads, "a check leaked a thread"


async def assert_times_out_cleanly(where: Target, spec: CheckSpec, seconds: float = 0.5) -> None:
    """The check must end at the caller's timeout and leave no socket, task or thread behind."""
    async with leak_free():
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await run_check(where, spec, seconds)
        assert time.monotonic() - started < seconds + 0.5


async def cancel_at_many_points(where: Target, spec: CheckSpec) -> None:
    """Cancel the check at growing delays, so cancellation lands at different steps of the
    exchange with a real server (connect, TLS handshake, login, query); nothing may leak."""
    async with leak_free():
        for delay in (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064):
            with contextlib.suppress(TimeoutError):
                await run_check(where, spec, delay)
