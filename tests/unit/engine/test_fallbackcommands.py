"""fallbackcommand: argv, processes run without a shell, in order, surviving bad programs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ldirector.engine import fallbackcommands
from ldirector.engine.fallbackcommands import FallbackCommands, argv, spawn
from tests.support.engine_world import config

FWM = """\
fallbackcommand=/bin/echo "two words"

virtual=100
	real=127.0.0.2 gate
	checktype=connect
	checkport=80

virtual=127.0.0.100:53
	protocol=udp
	real=127.0.0.3:53 masq
	checktype=ping
	checkcount=3
	checktimeout=2
"""


def test_fallbackcommand_argv() -> None:
    fwm, udp = config(FWM).virtuals
    assert argv(fwm, "start") == ["/bin/echo", "two words", "start", "100:0", "fwm"]
    assert argv(udp, "stop") == ["/bin/echo", "two words", "stop", "127.0.0.100:53", "udp"]


async def test_spawn_runs_without_a_shell_and_reports_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "ran"
    assert await spawn(["/bin/sh", "-c", f'echo "$0" > {marker}', "x;rm -rf /"]) == 0
    assert marker.read_text() == "x;rm -rf /\n"  # arguments arrive verbatim
    with caplog.at_level(logging.ERROR):
        assert await spawn(["/bin/sh", "-c", "echo nope >&2; exit 3"]) == 3
    assert "exit status 3: nope" in caplog.text


async def test_fallback_commands_run_in_order_and_survive_missing_programs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log_file = tmp_path / "log"
    text = (
        f"fallbackcommand=/bin/sh -c 'echo $0 >> {log_file}'\n\n"
        "virtual=127.0.0.100:80\n\treal=127.0.0.2:80 masq\n"
    )
    (virtual,) = config(text).virtuals
    commands = FallbackCommands()
    for action in ("start", "stop", "start"):
        commands.run(virtual, action)
    await commands.wait()
    assert log_file.read_text().split() == ["start", "stop", "start"]
    missing = config(text.replace("/bin/sh", "/nonexistent/cmd")).virtuals[0]
    with caplog.at_level(logging.ERROR):
        commands.run(missing, "start")
        await commands.wait()
    assert "/nonexistent/cmd" in caplog.text


ONE_VIRTUAL = "virtual=127.0.0.100:80\n\treal=127.0.0.2:80 masq\n"


def _gone(pid: int) -> bool:
    """The process has exited (a zombie its new parent has not reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(") ", 1)[1][:1] in ("Z", "X")


def _poll(done: Callable[[], bool], within: float = 2.0) -> bool:
    """Whether ``done()`` comes true within ``within`` seconds (a blocking wait: the processes
    watched live outside the event loop)."""
    deadline = time.monotonic() + within
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)
    return done()


def _left_gone(pid_file: Path) -> bool:
    """The process whose pid the command wrote is gone (it is written first, then waited on)."""
    return _poll(lambda: _gone(int(pid_file.read_text())))


@pytest.fixture
def pid_file(tmp_path: Path) -> Iterator[Path]:
    """Where a test's command writes the pid of the process it leaves behind; killed after."""
    path = tmp_path / "left.pid"
    yield path
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        os.kill(int(path.read_text()), signal.SIGKILL)


async def test_a_command_past_its_timeout_is_killed_with_its_children(
    tmp_path: Path, pid_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grandchild holding stderr must not hold the virtual's queue (and shutdown) with it."""
    monkeypatch.setattr(fallbackcommands, "COMMAND_TIMEOUT", 1.0)
    ran = tmp_path / "ran"
    script = f"echo $0 >> {ran}; [ $0 = stop ] || {{ sleep 60 & echo $! > {pid_file}; wait; }}"
    text = f"fallbackcommand=/bin/sh -c '{script}'\n\n" + ONE_VIRTUAL
    (virtual,) = config(text).virtuals
    commands = FallbackCommands()
    start = time.monotonic()
    commands.run(virtual, "start")
    commands.run(virtual, "stop")
    async with asyncio.timeout(fallbackcommands.COMMAND_TIMEOUT + 1):
        await commands.wait()
    assert time.monotonic() - start < fallbackcommands.COMMAND_TIMEOUT + 1
    assert ran.read_text().split() == ["start", "stop"]
    assert _left_gone(pid_file), "the grandchild was left running"


async def test_the_wait_ends_when_the_command_exits(pid_file: Path) -> None:
    """A process the command leaves behind may keep stderr open: that is not the command."""
    start = time.monotonic()
    async with asyncio.timeout(fallbackcommands.STDERR_GRACE + 1.5):
        status = await spawn(["/bin/sh", "-c", f"sleep 60 & echo $! > {pid_file}; exit 0"])
    assert status == 0
    assert time.monotonic() - start < fallbackcommands.STDERR_GRACE + 1


async def test_a_cancelled_command_is_killed_with_its_children(pid_file: Path) -> None:
    task = asyncio.create_task(spawn(["/bin/sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"]))
    await asyncio.sleep(0.1)  # the task starts the command, which starts its child
    assert _poll(lambda: pid_file.exists() and pid_file.read_text().endswith("\n"), 5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _left_gone(pid_file), "the command outlived the daemon's wait"


async def test_only_a_tail_of_stderr_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    """50 MB of stderr costs a few kilobytes, and the log line still has the last one."""
    noisy = "yes 0123456789 | head -n 4545455 >&2; echo last words >&2; exit 4"
    tracemalloc.start()
    try:
        with caplog.at_level(logging.ERROR):
            assert await spawn(["/bin/sh", "-c", noisy]) == 4
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20, f"peak {peak} bytes"
    assert "exit status 4: last words" in caplog.text
