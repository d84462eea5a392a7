"""The http check against hostile or broken servers: every answer is read within bounds.

A real server may send an endless head, an endless or compressed-to-explode body, something
that is not HTTP at all, or nothing. Each is judged quickly, in one bounded line, and costs the
director no more memory than the limits allow.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import re
import time
import tracemalloc
from typing import Any

from checks.http import MAX_BODY
from checks.httpclient import MAX_HEAD
from checks.types import HttpSpec
from tests.support.checkrun import run_check, target
from tests.support.httpwire import server


async def test_a_head_past_the_limit_is_refused_in_one_line() -> None:
    async def endless_head(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(4 * MAX_HEAD // 1000):  # bounded: four times what the check accepts
            writer.write(b"X-Junk: " + b"a" * 990 + b"\r\n")
            await writer.drain()

    async with server(endless_head) as port:
        started = time.monotonic()
        result = await run_check(target(port), HttpSpec(), 5)
    assert time.monotonic() - started < 2
    assert not result.ok
    assert result.reason.startswith("invalid HTTP answer: ")
    assert "\n" not in result.reason and len(result.reason) <= 200


async def test_an_endless_body_is_judged_by_its_first_megabyte() -> None:
    sent = {"bytes": 0}

    async def endless_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"<p>Test Page</p>" + b"x" * 65520
        for _ in range(2000):  # bounded: 128 MiB at most, far past what the check reads
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent["bytes"] += len(chunk)
            await writer.drain()

    async with server(endless_body) as port:
        found = await run_check(target(port), HttpSpec(receive=re.compile("Test Page")), 5)
        missing = await run_check(target(port), HttpSpec(receive=re.compile("absent")), 5)
    assert (found.ok, found.reason) == (True, "HTTP 200 OK")
    assert (missing.ok, missing.reason) == (False, "receive 'absent' not found (HTTP 200 OK)")
    assert sent["bytes"] < 40 * MAX_BODY  # the check hung up; the server did not run dry


async def test_a_compressed_bomb_is_inflated_only_to_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (64 * MAX_BODY))  # 64 MiB of zeros in about 64 KiB

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n\r\n"
        writer.write(head.encode() + bomb)
        await writer.drain()

    async with server(answer) as port:
        tracemalloc.start()
        try:
            result = await run_check(target(port), HttpSpec(receive=re.compile("x")), 5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert (result.ok, result.reason) == (False, "receive 'x' not found (HTTP 200 OK)")
    assert peak < 8 * MAX_BODY


async def test_an_answer_that_is_not_http_is_one_line() -> None:
    async def ssh(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n\x1b[31mred\r\n\r\n")
        await writer.drain()

    async with server(ssh) as port:
        result = await run_check(target(port), HttpSpec(), 3)
    assert not result.ok
    assert result.reason.startswith("invalid HTTP answer: ")
    assert "\x1b" not in result.reason and "\n" not in result.reason


async def test_a_server_closing_without_an_answer() -> None:
    async def nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        return

    async with server(nothing) as port:
        result = await run_check(target(port), HttpSpec(), 3)
    assert (result.ok, result.reason) == (False, "server closed the connection without a response")


async def test_a_body_ended_by_closing_the_connection_is_read() -> None:
    async def http10(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=latin-1\r\n\r\n")
        writer.write("<p>Test Page \xe9t\xe9</p>".encode("latin-1"))
        await writer.drain()

    async with server(http10) as port:
        result = await run_check(target(port), HttpSpec(receive=re.compile("Page été")), 3)
    assert (result.ok, result.reason) == (True, "HTTP 200 OK")


async def test_a_check_cut_by_its_deadline_leaves_nothing_to_report() -> None:
    """A black-holed real: connected, asked, silent. The deadline cancels the check; nothing
    is left behind for the loop to complain about later (an unretrieved exception)."""
    complaints: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: complaints.append(context))
    try:

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(10)

        async with server(silent) as port:
            results = await asyncio.gather(
                *(run_check(target(port), HttpSpec(), 0.2) for _ in range(20)),
                return_exceptions=True,
            )
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(None)
    assert all(isinstance(r, TimeoutError) for r in results)
    assert complaints == []
