"""Test support for the part-2 checks: finding daemons, running them, silent peers, probing.

A missing daemon skips the tests that need it, except under ``CI=true``, where it fails them: CI
must prove every check against its server. ``Daemon`` runs one private daemon in the foreground
with its config and data in its own directory under /tmp. ``probe`` calls ``checks.run`` under a
caller-owned timeout, as the scheduler does, and the leak helpers assert that a check leaves no
file descriptor, task or thread behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

import pytest
import trustme

import checks
from checks.types import CheckSpec, Result, Target

ROOT = Path(__file__).resolve().parents[3]


def need(*candidates: str) -> str:
    """The first existing executable among ``candidates`` (a glob is allowed), else skip/fail."""
    for pattern in candidates:
        for path in sorted(glob.glob(pattern)) if "*" in pattern else [pattern]:
            found = shutil.which(path)
            if found:
                return found
    unavailable(f"{candidates[0]} is not installed (see tests/deps/checks2.apt)")
    raise AssertionError("unreachable")


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail under CI where no daemon test may skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        unavailable(f"{what} needs root to start")


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, kind) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def private_dir(name: str) -> Path:
    """A fresh directory under /tmp that unprivileged daemon users can traverse."""
    path = Path(tempfile.mkdtemp(prefix=f"ldirector-{name}-"))
    path.chmod(0o755)
    return path


def write_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed-CA certificate for 127.0.0.1 and its key, as PEM files."""
    cert = trustme.CA().issue_cert("127.0.0.1", "::1", "localhost")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o644)
    return cert_path, key_path


@dataclass
class Daemon:
    """One running daemon and the directory it lives in."""

    name: str
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    ports: dict[str, int] = field(default_factory=dict)
    log: Path | None = None

    def start(self, argv: Sequence[str], *, user: str | None = None) -> None:
        self.log = self.directory / f"{self.name}.out"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                user=user,
                start_new_session=True,
            )

    def log_tail(self) -> str:
        texts = []
        for path in [self.log, *self.directory.glob("*.log")]:
            if path is not None and path.exists():
                texts.append(path.read_text(errors="replace")[-2000:])
        return "\n".join(texts)

    def wait_tcp(self, port: int, deadline: float = 30.0, host: str = "127.0.0.1") -> None:
        """Wait until ``host:port`` accepts a connection, or fail with the daemon's log."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process is not None and self.process.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
                return
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"{self.name} did not start on port {port}:\n{self.log_tail()}", pytrace=False)

    def run(self, argv: Sequence[str], *, user: str | None = None, stdin: bytes = b"") -> None:
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, cwd=self.directory, user=user, check=False
        )
        if done.returncode != 0:
            self.stop()
            out = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            pytest.fail(f"{self.name}: {argv[0]} exited {done.returncode}:\n{out}", pytrace=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(5)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    try:
        yield daemon
    finally:
        daemon.stop()


# --- silent peers: the refused / hung cases ---------------------------------------------------


@contextlib.contextmanager
def hung_tcp(host: str = "127.0.0.1") -> Iterator[int]:
    """A port whose kernel completes the handshake but whose owner never reads or writes."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        s.listen(64)
        yield s.getsockname()[1]


@contextlib.contextmanager
def refused_tcp(host: str = "127.0.0.1") -> Iterator[int]:
    """A port held by a socket that never listens, so connecting to it is refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        yield s.getsockname()[1]


@contextlib.contextmanager
def hung_udp(host: str = "127.0.0.1") -> Iterator[int]:
    """A UDP port that receives datagrams and never answers them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        yield s.getsockname()[1]


# --- running checks the way the scheduler does ----------------------------------------------------


def target(port: int, host: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(host), port=port)


async def probe(where: Target, spec: CheckSpec, seconds: float = 10.0) -> Result:
    """``checks.run`` under the caller-owned timeout, as the scheduler calls it."""
    async with asyncio.timeout(seconds):
        return await checks.run(where, spec)


def open_fds() -> set[str]:
    return {name for name in os.listdir("/proc/self/fd")}


async def assert_times_out_cleanly(where: Target, spec: CheckSpec, seconds: float = 0.5) -> None:
    """The check must end at the caller's timeout and leave no socket, task or thread behind."""
    before_fds, before_threads = open_fds(), threading.active_count()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await probe(where, spec, seconds)
    assert time.monotonic() - started < seconds + 0.5
    await settle(before_fds)
    assert open_fds() <= before_fds, "the check leaked a file descriptor"
    assert asyncio.all_tasks() == {asyncio.current_task()}, "the check leaked a task"
    assert threading.active_count() <= before_threads, "the check leaked a thread"


@contextlib.asynccontextmanager
async def leak_free() -> AsyncIterator[None]:
    """Checks run inside must leave no file descriptor, task or thread behind."""
    before_fds, before_threads = open_fds(), threading.active_count()
    yield
    await settle(before_fds)
    assert open_fds() <= before_fds, "a check leaked a file descriptor"
    assert asyncio.all_tasks() == {asyncio.current_task()}, "a check leaked a task"
    assert threading.active_count() <= before_threads, "a check leaked a thread"


async def cancel_at_many_points(where: Target, spec: CheckSpec) -> None:
    """Cancel the check at growing delays, so cancellation lands at different steps of the
    exchange with a real server (connect, TLS handshake, login, query); nothing may leak."""
    async with leak_free():
        for delay in (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064):
            with contextlib.suppress(TimeoutError):
                await probe(where, spec, delay)


async def settle(before_fds: set[str], limit: float = 2.0) -> None:
    """Let closed transports finish closing (the loop closes sockets on its next iterations)."""
    end = time.monotonic() + limit
    while not open_fds() <= before_fds and time.monotonic() < end:  # noqa: ASYNC110 - polling /proc
        await asyncio.sleep(0.01)
