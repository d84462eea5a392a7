"""The line-protocol client under the FTP, SMTP, POP3, IMAP and NNTP checks, against hostile
servers on loopback: endless replies and lines are bounded, and a server that has given its
answer cannot turn it into a timeout by stalling the goodbye."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from checks._lines import CLOSE_GRACE, MAX_LINE, MAX_LINES
from checks.types import CheckSpec, NntpSpec, PopSpec, SmtpSpec, Target
from tests.support.checkrun import leak_free, run_check, target


@asynccontextmanager
async def scripted(lines: list[bytes], *, repeat_last: int = 0) -> AsyncIterator[Target]:
    """A server on 127.0.0.1 that sends ``lines`` (the last one ``repeat_last`` more times),
    reads whatever comes, and never answers it nor hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            for line in lines + lines[-1:] * repeat_last:
                writer.write(line)
                await writer.drain()
                await asyncio.sleep(0)  # the check runs on this loop too: let it read
            for _ in range(1000):  # until the check hangs up
                if not await reader.read(1024):
                    break
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield target(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def test_an_endless_multi_line_reply_is_bounded() -> None:
    endless = scripted([b"220-welcome\r\n", b"220-more\r\n"], repeat_last=5000)
    async with endless as where, leak_free():
        result = await run_check(where, SmtpSpec(), 5)
    assert (result.ok, result.reason) == (False, f"multi-line reply longer than {MAX_LINES} lines")


async def test_an_endless_line_is_bounded() -> None:
    async with scripted([b"220 " + b"x" * 4096], repeat_last=100) as where, leak_free():
        result = await run_check(where, SmtpSpec(), 5)
    assert (result.ok, result.reason) == (False, f"reply line longer than {MAX_LINE} bytes")


@pytest.mark.parametrize(
    ("greeting", "spec", "reason"),
    [
        (b"200 news here\r\n", NntpSpec(), "NNTP 200 news here"),
        (b"+OK pop here\r\n", PopSpec(), "+OK pop here"),
    ],
    ids=["nntp", "pop"],
)
async def test_a_server_silent_after_its_answer_is_still_up(
    greeting: bytes, spec: CheckSpec, reason: str
) -> None:
    async with scripted([greeting]) as where, leak_free():
        started = time.monotonic()
        result = await run_check(where, spec, CLOSE_GRACE * 3 + 1)
    assert (result.ok, result.reason) == (True, reason)
    assert time.monotonic() - started < CLOSE_GRACE * 2 + 0.5
