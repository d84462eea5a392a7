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


async def _collect(stream: asyncio.StreamReader, kept: bytearray) -> None:
    # Keep reading past the bound, discarding, so that a chatty command never blocks on a full pipe.
    while chunk := await stream.read(65536):
        kept += chunk[: max(0, MAX_OUTPUT - len(kept))]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def check(target: Target, spec: ExternalSpec) -> Result:
    """Up when the command exits 0."""
    cmd = argv(target, spec)
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return Result(False, f"cannot run {cmd[0]}: {describe(exc)}")
    assert proc.stdout is not None  # noqa: S101 - stdout=PIPE above guarantees it
    kept = bytearray()
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(_collect(proc.stdout, kept))
            returncode = await proc.wait()
            # The command is done; whatever it left behind holding the pipe goes with it.
            _kill_group(proc.pid)
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid)
            await asyncio.shield(proc.wait())
    output = quote(kept.decode("utf-8", "replace"), REASON_OUTPUT)
    if returncode == 0:
        return Result(True, f"exit 0: {output}" if output else "exit 0")
    status = (
        f"killed by signal {signal.Signals(-returncode).name}"
        if returncode < 0
        else f"exit status {returncode}"
    )
    return Result(False, f"{status}: {output}" if output else status)
