"""Servers on loopback for the check tests: finding and running daemons, free ports, dead peers.

A missing daemon skips the tests that need it, except under ``CI=true``, where it fails them: CI
must prove every check against its server. ``Daemon`` runs one private daemon in the foreground,
in its own session, with its config and data in its own directory under /tmp; stopping it kills
its whole process group and removes the directory. The dead peers are the refused, hung and
black-holed ends a check must survive.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trustme

# --- finding daemons ---------------------------------------------------------------------------


def need(*candidates: str) -> str:
    """The first executable among ``candidates``, else skip (fail under CI=true).

    A candidate is a program name (looked up on PATH, then in the sbin directories), a path, or
    a glob of paths.
    """
    for pattern in candidates:
        for path in sorted(glob.glob(pattern)) if "*" in pattern else [pattern]:
            found = shutil.which(path) or shutil.which(path, path="/usr/sbin:/sbin")
            if found:
                return found
    unavailable(f"{candidates[0]} is not installed (see tests/deps/*.apt; scripts/setup)")
    raise AssertionError("unreachable")


def unavailable(reason: str) -> None:
    """Skip with ``reason``, or fail under CI where no daemon test may skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        unavailable(f"{what} needs root to start")


# --- ports and directories ---------------------------------------------------------------------


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A port free for TCP and UDP on 127.0.0.1 and ::1 at the time of asking."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if _free_everywhere(port):
            return port
    raise AssertionError("no port free on both loopback addresses in 100 tries")


def _free_everywhere(port: int) -> bool:
    for af, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            with socket.socket(af, kind) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    return False
    return True


def private_dir(name: str) -> Path:
    """A fresh directory under /tmp that unprivileged daemon users can traverse."""
    path = Path(tempfile.mkdtemp(prefix=f"ldirector-{name}-"))
    path.chmod(0o755)
    return path


def write_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, ::1 and localhost from a throwaway CA, and its key."""
    cert = trustme.CA().issue_cert("127.0.0.1", "::1", "localhost")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    key_path.chmod(0o644)
    return cert_path, key_path


# --- running daemons ---------------------------------------------------------------------------


@dataclass
class Daemon:
    """One daemon in its own session and the directory it lives in."""

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

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def fail(self, what: str) -> None:
        """Stop the daemon and fail the test with ``what`` and the daemon's logs."""
        logs = self.log_tail()  # stop() removes the directory they are in
        self.stop()
        pytest.fail(f"{self.name} {what}:\n{logs}", pytrace=False)

    def wait_tcp(self, port: int, deadline: float = 30.0, host: str = "127.0.0.1") -> None:
        """Wait until ``host:port`` accepts a connection, or fail with the daemon's log."""
        end = time.monotonic() + deadline
        while time.monotonic() < end and self.alive():
            with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
                return
            time.sleep(0.05)
        self.fail(f"did not start on {host} port {port}")

    def run(self, argv: Sequence[str], *, user: str | None = None, stdin: bytes = b"") -> None:
        """Run a setup command beside the daemon; fail with its output if it fails."""
        done = subprocess.run(
            list(argv), input=stdin, capture_output=True, cwd=self.directory, user=user, check=False
        )
        if done.returncode != 0:
            self.stop()
            out = (done.stdout + done.stderr).decode(errors="replace")[-2000:]
            pytest.fail(f"{self.name}: {argv[0]} exited {done.returncode}:\n{out}", pytrace=False)

    def stop(self) -> None:
        """Stop the whole process group (workers that outlive their master too), then clean up."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    try:
        yield daemon
    finally:
        daemon.stop()


# --- dead peers: the refused / hung / black-holed cases ----------------------------------------


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


@contextlib.contextmanager
def hung_tcp(host: str = "127.0.0.1") -> Iterator[int]:
    """A TCP port whose kernel completes the handshake but whose owner never reads or answers."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@contextlib.contextmanager
def refused_tcp(host: str = "127.0.0.1") -> Iterator[int]:
    """A port held by a socket that never listens, so connecting to it is refused."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def black_hole(host: str = "127.0.0.1") -> Iterator[int]:
    """A TCP port that drops SYNs: a listener whose accept queue is full, so connects hang."""
    with contextlib.ExitStack() as stack:
        sock = stack.enter_context(socket.socket(_family(host), socket.SOCK_STREAM))
        sock.bind((host, 0))
        sock.listen(0)
        port: int = sock.getsockname()[1]
        for _ in range(2):  # backlog 0 still queues one; two fill it
            filler = stack.enter_context(socket.socket(_family(host), socket.SOCK_STREAM))
            filler.setblocking(False)
            filler.connect_ex((host, port))
        time.sleep(0.05)  # let the kernel queue the fillers' handshakes
        yield port


@contextlib.contextmanager
def hung_udp(host: str = "127.0.0.1") -> Iterator[int]:
    """A UDP port that receives datagrams and never answers them."""
    with socket.socket(_family(host), socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        yield sock.getsockname()[1]
