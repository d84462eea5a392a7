"""checktype=external and external-perl: run ``command VIP VPORT RIP RPORT``; exit 0 means up.

The command runs without a shell in its own session, so that on timeout or cancellation the whole
process group, including anything it started, is killed. Output is kept up to ``MAX_OUTPUT``
bytes and shown in the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from ipaddress import IPv6Address

from checks._io import describe, quote
from checks.types import ExternalSpec, Result, Target

MAX_OUTPUT = 4096
#: Characters of output a reason quotes; the rest of the kept output goes to the debug log caller.
REASON_OUTPUT = 300


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
        self.output += data[: max(0, MAX_OUTPUT - len(self.output))]

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def check(target: Target, spec: ExternalSpec) -> Result:
    """Up when the command exits 0."""
    cmd = argv(target, spec)
    loop = asyncio.get_running_loop()
    try:
        transport, command = await loop.subprocess_exec(
            _Command,
            *cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Result(False, f"cannot run {cmd[0]}: {describe(exc)}")
    pgid = transport.get_pid()
    try:
        await command.exited
        # The command is done; whatever it left behind in its group (and holding the pipe)
        # goes with it, then the rest of the output is read up to end of file.
        _kill_group(pgid)
        await command.closed
    finally:
        # Checked on the transport: cancellation cancels the futures awaited above.
        if transport.get_returncode() is None or not command.closed.done():
            _kill_group(pgid)
        transport.close()  # kills the command if it still runs; the loop's child watcher reaps it
    returncode = transport.get_returncode()
    output = quote(command.output.decode("utf-8", "replace"), REASON_OUTPUT)
    if returncode == 0:
        return Result(True, f"exit 0: {output}" if output else "exit 0")
    if returncode is not None and returncode < 0:
        status = f"killed by signal {signal.Signals(-returncode).name}"
    else:
        status = f"exit status {returncode}"
    return Result(False, f"{status}: {output}" if output else status)
