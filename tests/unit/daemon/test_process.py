"""The pid-file rules and the asyncio signal glue, in process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldirector.cli.grammar import runs_config
from ldirector.daemon import process, runner
from tests.support import lookalike
from tests.support.sandbox import wait_until


@pytest.fixture
def fake_ldirectord(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process with a daemon's command line: Python running a script named ldirectord."""
    proc = lookalike.spawn(tmp_path, "x.cf", "start")
    yield proc
    proc.kill()
    proc.wait()


def test_pid_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(process.RUN_DIR_ENV, raising=False)
    assert process.pid_path("ldirectord") == Path("/run/ldirectord.ldirectord.pid")
    assert process.pid_path("web.cf") == Path("/run/ldirectord.web.cf.pid")
    monkeypatch.setenv(process.RUN_DIR_ENV, str(tmp_path))
    assert process.pid_path("web.cf") == tmp_path / "ldirectord.web.cf.pid"
    assert process.pid_path("web.cf", Path("/x")) == Path("/x/ldirectord.web.cf.pid")


def test_probe_believes_only_a_live_ldirector(
    tmp_path: Path, fake_ldirectord: subprocess.Popen[bytes]
) -> None:
    path = tmp_path / "ldirectord.x.pid"
    assert process.pid_status(path) == process.PidStatus(process.PidState.STOPPED, None, path)
    path.write_text("garbage\n")
    assert process.pid_status(path).state is process.PidState.STALE
    path.write_text(f"{os.getpid()}\n")  # alive, but pytest is not ldirector
    assert process.pid_status(path).state is process.PidState.STALE
    dead = subprocess.Popen(["true"])
    dead.wait()
    path.write_text(f"{dead.pid}\n")
    assert process.pid_status(path) == process.PidStatus(process.PidState.STALE, dead.pid, path)
    path.write_text(f"{fake_ldirectord.pid}\n")
    assert process.pid_status(path) == process.PidStatus(
        process.PidState.RUNNING, fake_ldirectord.pid, path
    )


def test_a_zombie_is_not_running(tmp_path: Path) -> None:
    zombie = subprocess.Popen(["bash", "-c", "exec -a ldirectord true"])
    # Not reaped yet: /proc still has it, in state Z.
    assert wait_until(lambda: "Z" in Path(f"/proc/{zombie.pid}/stat").read_text().split(")")[1][:3])
    try:
        assert not process.is_ldirector(zombie.pid)
    finally:
        zombie.wait()


@pytest.mark.parametrize("kind", ["exec-a", "python-c", "other-user"])
def test_a_process_that_only_mentions_ldirectord_is_not_ours(tmp_path: Path, kind: str) -> None:
    if kind == "other-user" and not lookalike.can_run_as_another_user():
        pytest.skip("needs root and /usr/bin/python3 to run a process as nobody")
    path = tmp_path / "ldirectord.x.cf.pid"
    with lookalike.impostor(kind, "x.cf", "start") as stranger:
        path.write_text(f"{stranger.pid}\n")
        assert not process.is_ldirector(stranger.pid)
        assert process.pid_status(path, runs_config("x.cf")).state is process.PidState.STALE


def test_the_pid_file_must_name_a_daemon_of_the_same_config(
    tmp_path: Path, fake_ldirectord: subprocess.Popen[bytes]
) -> None:
    path = tmp_path / "ldirectord.pid"
    path.write_text(f"{fake_ldirectord.pid}\n")
    assert process.pid_status(path, runs_config("x.cf")).state is process.PidState.RUNNING
    assert process.pid_status(path, runs_config("y.cf")).state is process.PidState.STALE
    assert process.pid_status(path, runs_config("ldirectord")).state is process.PidState.STALE


@pytest.mark.parametrize(
    ("argv", "exe", "args"),
    [
        (["/usr/bin/python3", "/usr/sbin/ldirectord", "start"], "python3.11", ["start"]),
        (
            ["python3", "-X", "dev", "/usr/bin/ldirector", "a.cf", "status"],
            "python3",
            ["a.cf", "status"],
        ),
        (["python3", "-I", "/usr/bin/ldirector", "a.cf", "stop"], "python3.11", ["a.cf", "stop"]),
        (
            ["python3", "-m", "ldirector", "-d", "start"],
            "/usr/bin/python3.11 (deleted)",
            ["-d", "start"],
        ),
        (["python3", "-m", "pip", "ldirector"], "python3", None),
        (["/usr/sbin/ldirectord", "start"], "ldirectord", ["start"]),
        (["ldirectord", "start"], "sleep", None),
        (["python3", "-c", "pass", "ldirectord", "start"], "python3", None),
        (["python3", "-Ic", "ldirectord", "start"], "python3", None),
        (["python3", "-Imldirector", "x.cf", "start"], "python3", ["x.cf", "start"]),
        (["python3", "-", "ldirectord", "start"], "python3", None),
        (["python3"], "python3", None),
    ],
)
def test_command_line_shapes(argv: list[str], exe: str, args: list[str] | None) -> None:
    raw = "\0".join(argv).encode() + b"\0"
    found = process.command_args(raw, exe)
    assert found == args


def test_pid_file_is_removed_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "ldirectord.x.pid"
    process.write_pid_file(path, 4242)
    assert path.read_text() == "4242\n"
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was renamed into place
    process.remove_pid_file(path, 1111)  # someone else's: left alone
    assert path.exists()
    process.remove_pid_file(path, 4242)
    assert not path.exists()
    process.remove_pid_file(path, 4242)  # already gone: fine


def test_a_running_daemons_pid_file_is_never_removed_as_stale(
    tmp_path: Path, fake_ldirectord: subprocess.Popen[bytes]
) -> None:
    path = tmp_path / "ldirectord.x.pid"
    path.write_text(f"{os.getpid()}\n")
    stale = process.pid_status(path)
    # Between the probe and the removal a real daemon took the file over.
    path.write_text(f"{fake_ldirectord.pid}\n")
    process.remove_stale_pid_file(stale)
    assert path.exists()


def test_terminate_waits_for_exit(fake_ldirectord: subprocess.Popen[bytes]) -> None:
    assert process.terminate(fake_ldirectord.pid, 5)
    fake_ldirectord.wait()
    assert not process.is_ldirector(fake_ldirectord.pid)


@pytest.fixture(autouse=True)
def keep_sigpipe() -> Iterator[None]:
    previous = signal.getsignal(signal.SIGPIPE)
    yield
    signal.signal(signal.SIGPIPE, previous)


async def test_signal_glue_reload_and_stop() -> None:
    loop = asyncio.get_running_loop()
    reloads: list[int] = []
    stops: list[str] = []
    gate = asyncio.Event()

    async def on_reload() -> None:
        reloads.append(len(reloads))
        await gate.wait()

    glue = runner.SignalGlue(on_reload, stops.append)
    glue.install(loop)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.05)
        assert reloads == [0]
        # Three more HUPs while the first reload runs: exactly one more reload follows.
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.sleep(0.05)
        assert reloads == [0]
        gate.set()
        await asyncio.sleep(0.05)
        assert reloads == [0, 1]
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # a second terminating signal changes nothing
        os.kill(os.getpid(), signal.SIGHUP)  # and no reload starts once stopping
        await asyncio.sleep(0.05)
        assert stops == ["TERM"] and glue.stop_signal == "TERM"
        assert reloads == [0, 1]
        await glue.drain()
    finally:
        glue.uninstall(loop)


async def test_signals_are_handled_while_a_coroutine_waits() -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    async def no_reload() -> None:
        return None

    glue = runner.SignalGlue(no_reload, lambda _name: stopped.set())
    glue.install(loop)
    try:
        slow = asyncio.create_task(asyncio.sleep(3600))  # a check against a silent server
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGQUIT)
        async with asyncio.timeout(2):
            await stopped.wait()
        assert glue.stop_signal == "QUIT" and not slow.done()
        slow.cancel()
    finally:
        glue.uninstall(loop)
