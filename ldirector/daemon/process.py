"""Process-life edge: the pid file, daemonizing, stopping a running daemon, and what the
daemon body is handed (``Settings``, ``DaemonContext``, the ``DaemonBody`` protocol).

``ldirector.cli.lifecycle`` uses these to implement the ldirectord verbs and ``runner.serve`` to
run the body; nothing here knows about the config model or the engine. A pid file is believed
only when it names a live ldirector process of this user running the same config (the caller
says how to recognise that config in a command line), so a stale file or a recycled pid never
makes ``status`` lie, ``start`` refuse or ``stop`` kill a stranger.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Annotations only: stop, status and the other verbs that never run the daemon read this
    # module without loading the alerter's and the notifier's asyncio.
    from ldirector.daemon.alerts import Alerter
    from ldirector.daemon.sdnotify import Notifier

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


#: A command line longer than this is not ldirector's (ours is a handful of short words).
MAX_CMDLINE = 64 * 1024
#: /proc/PID/stat is one short line; the bound only guards against a surprise.
MAX_STAT = 4096
#: The names ldirector runs under: its console scripts and ``python -m ldirector``.
PROGRAM_NAMES = frozenset({"ldirector", "ldirectord"})
#: The interpreter's long options that take the next word as their value.
_PYTHON_LONG_VALUE_OPTIONS = frozenset({"--check-hash-based-pycs"})

#: Given the arguments after the program, whether they run the config in question.
ArgsMatch = Callable[[Sequence[str]], bool]


def any_config(_args: Sequence[str]) -> bool:
    """Any ldirector process of this user, whatever config it runs."""
    return True


def program_args(pid: int) -> list[str] | None:
    """The arguments after the program name when ``pid`` is a live ldirector of this user.

    Ours means: not a zombie, owned by this (effective) user, an executable that is Python (or
    ldirector itself, frozen) and a command line that runs an ``ldirector``/``ldirectord``
    script or ``-m ldirector``. A recycled pid held by anything else (``sleep`` named
    ``ldirectord`` with ``exec -a``, a shell whose arguments mention ldirectord, another
    user's process) is not.
    """
    proc = Path("/proc") / str(pid)
    try:
        owner = os.stat(proc).st_uid
        stat = _read_bounded(proc / "stat", MAX_STAT)
        raw = _read_bounded(proc / "cmdline", MAX_CMDLINE + 1)
        exe = os.readlink(proc / "exe")
    except OSError:
        return None
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    if owner != os.geteuid() or stat.rpartition(b")")[2].split()[:1] in ([b"Z"], [b"X"]):
        return None
    return command_args(raw, exe)


def _read_bounded(path: Path, limit: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(limit)


def command_args(cmdline: bytes, exe: str) -> list[str] | None:
    """The arguments after the program in a command line (``/proc/PID/cmdline``) run by
    executable ``exe``, if that command line runs ldirector; else None."""
    if len(cmdline) > MAX_CMDLINE:
        return None
    argv = [a.decode(errors="surrogateescape") for a in cmdline.split(b"\0")]
    if argv and argv[-1] == "":
        argv.pop()
    # An interpreter replaced by an upgrade still runs the daemon: /proc says "(deleted)".
    exe = os.path.basename(exe.removesuffix(" (deleted)"))
    if exe in PROGRAM_NAMES:
        return argv[1:]
    if not exe.startswith("python"):
        return None
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-" or not arg.startswith("-"):  # the script ("-": read from stdin)
            return argv[i + 1 :] if os.path.basename(arg) in PROGRAM_NAMES else None
        if arg.startswith("--"):
            i += 2 if arg in _PYTHON_LONG_VALUE_OPTIONS else 1
            continue
        # Short options bundle (-IsX dev, -Im ldirector): -c and -m end them, -X/-W take a value.
        step = 1
        for k, letter in enumerate(arg[1:], start=2):
            if letter == "c":
                return None
            if letter in "mXW":
                inline = arg[k:]
                value = inline or (argv[i + 1] if i + 1 < len(argv) else "")
                step = 1 if inline else 2
                if letter == "m":
                    return argv[i + step :] if value == "ldirector" else None
                break
        i += step
    return None


def is_ldirector(pid: int, matches: ArgsMatch = any_config) -> bool:
    """A live ldirector process of this user whose arguments satisfy ``matches``."""
    args = program_args(pid)
    return args is not None and matches(args)


def pid_status(path: Path, matches: ArgsMatch = any_config) -> PidStatus:
    """Running, stopped or stale, judged by the pid file and /proc, never by the file alone."""
    if not path.exists():
        return PidStatus(PidState.STOPPED, None, path)
    pid = read_pid(path)
    if pid is not None and is_ldirector(pid, matches):
        return PidStatus(PidState.RUNNING, pid, path)
    return PidStatus(PidState.STALE, pid, path)


def write_pid_file(path: Path, pid: int) -> None:
    """Atomically, so a concurrent ``status`` never reads a half-written pid."""
    tmp = path.with_name(f".{path.name}.{pid}.tmp")
    tmp.write_text(f"{pid}\n", encoding="ascii")
    os.replace(tmp, path)


def remove_pid_file(path: Path, pid: int) -> None:
    """Remove the file only if it still names ``pid``: never another daemon's."""
    if read_pid(path) == pid:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale_pid_file(status: PidStatus, matches: ArgsMatch = any_config) -> None:
    """Only a file already judged stale may be removed by someone other than its owner."""
    if status.state is PidState.STALE and pid_status(status.path, matches).state is PidState.STALE:
        with contextlib.suppress(FileNotFoundError):
            status.path.unlink()


def wait_for_exit(
    pid: int, timeout: float, poll: float = 0.05, matches: ArgsMatch = any_config
) -> bool:
    """True once ``pid`` is gone (or is no longer ldirector), False after ``timeout``."""
    deadline = time.monotonic() + timeout
    while is_ldirector(pid, matches):
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def terminate(pid: int, timeout: float, matches: ArgsMatch = any_config) -> bool:
    """SIGTERM, then wait with a bound while the daemon runs its cleanup (cleanstop)."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    return wait_for_exit(pid, timeout, matches=matches)


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
    #: start-up and of each reload are held and settled to their net effect.
    alerter: Alerter


class DaemonBody(Protocol):
    """The daemon body (the engine). ``run`` returns once ``stop`` has been honoured."""

    async def run(self) -> None: ...

    async def reload(self, settings: Settings) -> None: ...

    def reload_rejected(self) -> None:
        """A reload's config did not load: the body keeps running the old one (and says so)."""

    def stop(self) -> None: ...


ServiceFactory = Callable[[DaemonContext], DaemonBody]
