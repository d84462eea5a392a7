"""fallbackcommand: ``<command> start|stop VIP:PORT protocol`` when a virtual loses or regains
its last real, and ``stop`` at shutdown (which ldirectord never sends: U6).

Sits at the engine's edge. Commands run as child processes without a shell (the command line
is split the way a shell would split it) and never block the engine: each virtual's commands
run one after another in their own task, so a start is never overtaken by its stop.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from collections.abc import Awaitable, Callable, Sequence

from ldirector.config.model import Protocol, Virtual

log = logging.getLogger(__name__)

#: How long one fallbackcommand may run before it is killed.
COMMAND_TIMEOUT = 60.0

Spawner = Callable[[Sequence[str]], Awaitable[int]]


def argv(virtual: Virtual, action: str) -> list[str]:
    """The argument vector: the command's words, then the action, ``VIP:PORT`` and protocol.

    Firewall-mark virtuals pass ``MARK:0 fwm``; ldirectord passes an empty address there.
    """
    words = shlex.split(virtual.fallbackcommand or "")
    endpoint = f"{virtual.fwmark}:0" if virtual.protocol is Protocol.FWM else virtual.endpoint
    return [*words, action, endpoint, str(virtual.protocol)]


async def spawn(args: Sequence[str]) -> int:
    """Run a command to completion (killed after ``COMMAND_TIMEOUT``); return its exit status."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(COMMAND_TIMEOUT):
            _, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        log.error("fallbackcommand %s: killed after %gs", shlex.join(args), COMMAND_TIMEOUT)
        return -9
    if process.returncode:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
        log.error(
            "fallbackcommand %s: exit status %d%s",
            shlex.join(args),
            process.returncode,
            f": {tail[0]}" if tail else "",
        )
    return process.returncode or 0


class FallbackCommands:
    """Runs fallbackcommands in the background, in order per virtual."""

    def __init__(self, spawner: Spawner = spawn) -> None:
        self._spawner = spawner
        self._last: dict[str, asyncio.Task[None]] = {}

    def run(self, virtual: Virtual, action: str) -> None:
        """Queue ``action`` (start or stop) for ``virtual``; returns at once."""
        if not virtual.fallbackcommand:
            return
        try:
            args = argv(virtual, action)
        except ValueError as exc:  # unbalanced quotes
            log.error("fallbackcommand of %s cannot be split: %s", virtual.vid, exc)
            return
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
