"""fallbackcommand: ``<command> start|stop VIP:PORT protocol`` when a virtual loses or regains
its last real, and ``stop`` at shutdown (which ldirectord never sends).

Sits at the engine's edge. Commands run as child processes without a shell (the config split
the command line the way a shell would) and never block the engine: each virtual's commands
run one after another in their own task, so a start is never overtaken by its stop.

A command is bounded in time and memory: it runs in its own process group, killed whole when
it outlives ``COMMAND_TIMEOUT`` or the daemon stops waiting for it, so no grandchild is left
behind; the wait ends when the command exits, not when the last process holding its stderr
does; and only the last ``STDERR_TAIL`` bytes of its stderr are kept, for the log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
from collections.abc import Awaitable, Callable, Sequence

from ldirector.config.model import ServiceProtocol, Virtual
from ldirector.core.text import safe_text

log = logging.getLogger(__name__)

#: How long one fallbackcommand may run before it is killed.
COMMAND_TIMEOUT = 60.0
#: How long stderr is still read once the command exited: what it wrote just before, not
#: what a process it left behind keeps writing.
STDERR_GRACE = 0.5
#: Seconds to wait for a killed command to be reaped when its wait is cancelled.
REAP_GRACE = 1.0
#: Bytes of stderr kept for the log line (its last line is logged).
STDERR_TAIL = 4096

Spawner = Callable[[Sequence[str]], Awaitable[int]]


def argv(virtual: Virtual, action: str) -> list[str]:
    """The argument vector: the command's words, then the action, ``VIP:PORT`` and protocol.

    Firewall-mark virtuals pass ``MARK:0 fwm``; ldirectord passes an empty address there.
    """
    endpoint = (
        f"{virtual.fwmark}:0" if virtual.protocol is ServiceProtocol.FWM else virtual.endpoint
    )
    return [*virtual.fallbackcommand, action, endpoint, str(virtual.protocol)]


class _Tail(asyncio.Protocol):
    """Keeps the last ``STDERR_TAIL`` bytes of a pipe; ``closed`` is set at end of file."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data
        del self.data[:-STDERR_TAIL]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def last_line(self) -> str:
        lines = self.data.decode(errors="replace").strip().splitlines()
        return safe_text(lines[-1]) if lines else ""


def _kill_group(pid: int) -> None:
    """SIGKILL the command's process group (its pid: it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


async def spawn(args: Sequence[str]) -> int:
    """Run a command to completion (killed after ``COMMAND_TIMEOUT``); return its exit status.

    Cancelling the wait kills the command's whole process group too.
    """
    loop = asyncio.get_running_loop()
    # stderr is a pipe of our own, not the subprocess transport's: the transport's wait()
    # would last as long as any process holds the pipe open.
    read_fd, write_fd = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=write_fd,
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    transport, tail = await loop.connect_read_pipe(_Tail, os.fdopen(read_fd, "rb", buffering=0))
    try:
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                status = await process.wait()
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            log.error("fallbackcommand %s: killed after %gs", shlex.join(args), COMMAND_TIMEOUT)
            return -9
        except BaseException:  # cancelled: the daemon is going away, the command with it
            _kill_group(process.pid)
            # Reaped, so nothing is left running behind a transport that was never closed.
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(REAP_GRACE):
                    await asyncio.shield(process.wait())
            raise
        await asyncio.wait({tail.closed}, timeout=STDERR_GRACE)
    finally:
        transport.close()
    if status:
        line = tail.last_line()
        log.error(
            "fallbackcommand %s: exit status %d%s",
            shlex.join(args),
            status,
            f": {line}" if line else "",
        )
    return status


class FallbackCommands:
    """Runs fallbackcommands in the background, in order per virtual."""

    def __init__(self, spawner: Spawner = spawn) -> None:
        self._spawner = spawner
        self._last: dict[str, asyncio.Task[None]] = {}

    def run(self, virtual: Virtual, action: str) -> None:
        """Queue ``action`` (start or stop) for ``virtual``; returns at once."""
        if not virtual.fallbackcommand:
            return
        args = argv(virtual, action)
        previous = self._last.get(virtual.vid)
        self._last[virtual.vid] = asyncio.create_task(
            self._after(previous, args), name=f"fallbackcommand {virtual.vid}"
        )

    async def _after(self, previous: asyncio.Task[None] | None, args: list[str]) -> None:
        if previous is not None:
            await asyncio.gather(previous, return_exceptions=True)
        log.info("running fallbackcommand: %s", shlex.join(args))
        try:
            await self._spawner(args)
        except OSError as exc:
            log.error("fallbackcommand %s: %s", shlex.join(args), exc)

    async def wait(self) -> None:
        """Wait for every queued command to finish."""
        await asyncio.gather(*self._last.values(), return_exceptions=True)
        self._last.clear()
