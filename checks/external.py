"""checktype=external and external-perl: run ``command VIP VPORT RIP RPORT``; exit 0 means up.

The verdict is the command's exit status, taken as soon as the command itself exits: output is
kept up to ``MAX_OUTPUT`` bytes, shown in the reason, and read only for a moment past that exit,
so a child the command left behind holding its stdout cannot hold the check.

Nothing the command starts outlives the check. The command runs without a shell in its own
session and process group, and that group is killed (SIGKILL) when the command exits, when the
check times out and when it is cancelled. A child that left the group (``setsid``, a daemon's
double fork) is found by a token in its environment, which children inherit: it is killed on
timeout and cancellation, and after a normal exit when it still holds the command's output. A
child that both left the group and let go of the output is a daemon the command started on
purpose and is left alone, since finding it would mean reading every process's environment on
every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
from ipaddress import IPv6Address

from checks._io import describe, printable
from checks.types import ExternalSpec, Result, Target, Weight

MAX_OUTPUT = 4096
#: keepalived's ``misc_dynamic``: an exit status of 2 to 255 means up at weight status - 2.
DYNAMIC_BASE = 2
#: Characters of output a reason quotes; the rest of the kept output goes to the debug log caller.
REASON_OUTPUT = 300
#: Seconds the output is still read after the command exited and its group was killed.
DRAIN_GRACE = 0.1
#: The environment variable marking every process a run starts: ``NAME=<random token>``.
MARKER = "LDIRECTOR_CHECK_RUN"
#: Most /proc entries looked at when hunting a run's escaped children.
MAX_PROCESSES = 1 << 16


def argv(target: Target, spec: ExternalSpec) -> list[str]:
    """The command line ldirectord builds: the command, then VIP VPORT RIP RPORT."""
    rip = str(target.address)
    if isinstance(target.address, IPv6Address):
        rip = f"[{rip}]"  # ldirectord passes IPv6 addresses with their brackets
    args = [target.virtual, str(target.virtual_port), rip, str(target.real_port or target.port)]
    return ["perl", spec.command, *args] if spec.perl else [spec.command, *args]


class _Command(asyncio.SubprocessProtocol):
    """Keeps the first ``MAX_OUTPUT`` bytes of output and signals exit and pipe closure."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.output = bytearray()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        # Reading on past the bound, discarding, so that a chatty command never blocks.
        room = MAX_OUTPUT - len(self.output)
        if room > 0:
            self.output += data[:room]

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _kill_marked(entry: bytes) -> None:
    """SIGKILL every process whose environment holds ``entry`` (``NAME=token``).

    A pidfd pins each process while its environment is read, so a pid reused meanwhile is
    never signalled by mistake.
    """
    try:
        names = os.listdir("/proc")
    except OSError:
        return
    for name in names[:MAX_PROCESSES]:
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            pidfd = os.pidfd_open(int(name))
        except OSError:  # gone already, or not ours to see
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as environ:
                if entry in environ.read().split(b"\0"):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(pidfd)


async def _drained(command: _Command) -> bool:
    """Whether the output reached end of file within ``DRAIN_GRACE``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_GRACE):
            await asyncio.shield(command.closed)
    return command.closed.done()


async def check(target: Target, spec: ExternalSpec) -> Result:
    """Up when the command exits 0 (or, with ``spec.dynamic``, 2 to 255: a weight)."""
    cmd = argv(target, spec)
    token = secrets.token_hex(16)
    entry = f"{MARKER}={token}".encode()
    loop = asyncio.get_running_loop()
    try:
        transport, command = await loop.subprocess_exec(
            _Command,
            *cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, MARKER: token},
        )
    except OSError as exc:
        return Result(False, f"cannot run {cmd[0]}: {describe(exc)}")
    pgid = transport.get_pid()
    finished = False
    try:
        await command.exited
        # The verdict is in. Whatever the command left in its group goes now; the output
        # written before the exit is still read, for a moment, unless something that left the
        # group holds the pipe open: that goes too, then the pipe is closed regardless.
        _kill_group(pgid)
        if not await _drained(command):
            _kill_marked(entry)
            await _drained(command)
        finished = True
    finally:
        if not finished:  # timed out or cancelled: the command may still run, children too
            _kill_group(pgid)
            _kill_marked(entry)
        transport.close()  # kills the command if it still runs; the loop's child watcher reaps it
    returncode = transport.get_returncode()
    output = printable(command.output.decode("utf-8", "replace"), REASON_OUTPUT)
    if returncode == 0:
        return Result(True, f"exit 0: {output}" if output else "exit 0")
    if spec.dynamic and returncode is not None and returncode >= 2:
        weight = returncode - DYNAMIC_BASE
        status = f"exit status {returncode}: weight {weight}"
        return Result(True, f"{status}: {output}" if output else status, weight=Weight(weight))
    if returncode is not None and returncode < 0:
        status = f"killed by signal {_signal_name(-returncode)}"
    else:
        status = f"exit status {returncode}"
    return Result(False, f"{status}: {output}" if output else status)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:  # a real-time signal other than SIGRTMIN and SIGRTMAX
        return str(number)
