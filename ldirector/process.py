"""Process-life edge: the pid file, daemonizing, stopping a running daemon, and what the
daemon body is handed (``Settings``, ``DaemonContext``, the ``Service`` protocol).

``commands`` uses these to implement the ldirectord verbs and ``daemon.serve`` to run the body;
nothing here knows about the config model or the engine. A pid file is believed only when it
names a live ldirector process, so a stale file or a recycled pid never makes ``status`` lie or
``stop`` kill a stranger.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ldirector.alerts import Alerter
from ldirector.sdnotify import Notifier

DEFAULT_RUN_DIR = Path("/run")
# Tests and unusual packagings point the pid files elsewhere without editing code.
RUN_DIR_ENV = "LDIRECTOR_RUN_DIR"


def run_dir() -> Path:
    return Path(os.environ.get(RUN_DIR_ENV) or DEFAULT_RUN_DIR)


def pid_path(cfgname: str, directory: Path | None = None) -> Path:
    """``/run/ldirectord.<CFGNAME>.pid``, where ldirectord keeps it."""
    return (directory or run_dir()) / f"ldirectord.{cfgname}.pid"


class PidState(enum.Enum):
    RUNNING = "running"
    STOPPED = "stopped"  # no pid file
    STALE = "stale"  # a pid file whose pid is not a live ldirector


@dataclass(frozen=True, slots=True)
class PidStatus:
    state: PidState
    pid: int | None
    path: Path


def read_pid(path: Path) -> int | None:
    """The pid in the file, or None if the file is missing, unreadable or garbage."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def is_ldirector(pid: int) -> bool:
    """A live, non-zombie process whose command line is ldirector (or ldirectord)."""
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        argv = (proc / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    if stat.rpartition(")")[2].split()[:1] in (["Z"], ["X"]):
        return False
    return any(_names_ldirector(arg) for arg in argv[:4])


def _names_ldirector(arg: bytes) -> bool:
    return os.path.basename(arg.decode(errors="replace")) in ("ldirector", "ldirectord")


def probe(path: Path) -> PidStatus:
    """Running, stopped or stale, judged by the pid file and /proc, never by the file alone."""
    if not path.exists():
        return PidStatus(PidState.STOPPED, None, path)
    pid = read_pid(path)
    if pid is not None and is_ldirector(pid):
        return PidStatus(PidState.RUNNING, pid, path)
    return PidStatus(PidState.STALE, pid, path)


def write_pid_file(path: Path, pid: int) -> None:
    """Atomically, so a concurrent ``status`` never reads a half-written pid."""
    tmp = path.with_name(f".{path.name}.{pid}.tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    os.replace(tmp, path)


def remove_pid_file(path: Path, pid: int) -> None:
    """Remove the file only if it still names ``pid``: never another daemon's (B2)."""
    if read_pid(path) == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_pid_file(status: PidStatus) -> None:
    """Only a file already judged stale may be removed by someone other than its owner."""
    if status.state is PidState.STALE and probe(status.path).state is PidState.STALE:
        with contextlib.suppress(FileNotFoundError):
            status.path.unlink()


def wait_for_exit(pid: int, timeout: float, poll: float = 0.05) -> bool:
    """True once ``pid`` is gone (or is no longer ldirector), False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while is_ldirector(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, then wait with a bound while the daemon runs its cleanup (cleanstop)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    return wait_for_exit(pid, timeout)


# --- daemonizing -----------------------------------------------------------------------------


class Detached:
    """The daemon's end of the start-up pipe: tells the waiting ``start`` how start-up went."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def report(self, exit_code: int, message: str = "") -> None:
        """0 once ready; else the exit code ``start`` returns and the line it prints."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._fd, bytes([exit_code & 0xFF]) + message.encode()[:PIPE_BUF])
        os.close(self._fd)
        self._fd = None


PIPE_BUF = 512  # one atomic pipe write carries the verdict and its message


def daemonize(ready_timeout: float = 60.0) -> Detached | tuple[int, str]:
    """Double fork + setsid + chdir / + stdio to /dev/null.

    Returns a ``Detached`` in the daemon (grandchild). In the original process it returns the
    exit code and message the daemon reported through ``Detached.report`` (1 if it died
    without reporting, 0 if it is still starting after ``ready_timeout``).
    """
    read_fd, write_fd = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(write_fd)
        os.waitpid(first, 0)
        return _await_report(read_fd, ready_timeout)
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if devnull > 2:
        os.close(devnull)
    return Detached(write_fd)


def _await_report(read_fd: int, timeout: float) -> tuple[int, str]:
    import select

    try:
        readable, _, _ = select.select([read_fd], [], [], timeout)
        if not readable:
            return 0, "still starting; see the log"
        data = os.read(read_fd, 1 + PIPE_BUF)
        if not data:
            return 1, "the daemon exited during start-up; see the log"
        return data[0], data[1:].decode(errors="replace")
    finally:
        os.close(read_fd)


# --- what the daemon body is handed ------------------------------------------------------------


class ConfigInvalid(Exception):
    """The config cannot be used; ``diagnostics`` are ready-to-print ``FILE:LINE: ...`` lines."""

    def __init__(self, diagnostics: tuple[str, ...]) -> None:
        super().__init__("\n".join(diagnostics))
        self.diagnostics = diagnostics


@dataclass(frozen=True, slots=True)
class Settings:
    """What the process edge needs from a config, plus the parsed model for the engine."""

    logfile: str | None = None
    supervised: bool = False
    execute: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    autoreload: bool = False
    callback: str | None = None
    #: How often the config file is polled for autoreload/callback (ldirectord: each round).
    poll_interval: float = 10.0
    config: object = None


Loader = Callable[[Path], Settings]


@dataclass(slots=True)
class DaemonContext:
    """Handed to the daemon body: its config, the systemd notifier and the ready callback."""

    config_path: Path
    cfgname: str
    settings: Settings
    notifier: Notifier
    #: Call once the first reconcile is done: READY=1 to systemd, exit 0 for ``start``.
    ready: Callable[[], None]
    #: Where the body reports state changes for email (``Alerter.notify``). Events of the
    #: start-up and of each reload are held and settled to their net effect (U4).
    alerter: Alerter


class Service(Protocol):
    """The daemon body (the engine). ``run`` returns once ``stop`` has been honoured."""

    async def run(self) -> None: ...

    async def reload(self, settings: Settings) -> None: ...

    def reload_rejected(self) -> None:
        """A reload's config did not load: the body keeps running the old one (and says so)."""

    def stop(self) -> None: ...


ServiceFactory = Callable[[DaemonContext], Service]
