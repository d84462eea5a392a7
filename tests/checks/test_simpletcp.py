"""service=simpletcp against loopback asyncio servers (simpletcp is a generic line protocol)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from ipaddress import ip_address

import pytest

from checks.types import SimpleTcpSpec, Target
from tests.support.checkrun import assert_times_out_cleanly, run_check
from tests.support.servers import free_port, hung_tcp

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
SPEC = SimpleTcpSpec(request="STATUS\nverbose\n", receive=re.compile(r"^state: (up|ready)"))


@asynccontextmanager
async def serving(handler: Handler, host: str = "127.0.0.1") -> AsyncIterator[Target]:
    server = await asyncio.start_server(handler, host, 0)
    try:
        yield Target(address=ip_address(host), port=server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def status_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers once the client has closed its side, like ldirectord's shutdown(SHUT_WR)."""
    request = await reader.read()
    reply = b"state: up\nload: 3\n" if request == b"STATUS\nverbose\n" else b"state: confused\n"
    writer.write(b"hello\n" + reply)
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_matching_line_is_up(host: str, no_leaks: None) -> None:
    async with serving(status_server, host) as target:
        result = await run_check(target, SPEC, 2)
    assert (result.ok, result.reason) == (True, "reply 'state: up'")


async def test_wrong_answer_is_down(no_leaks: None) -> None:
    spec = SimpleTcpSpec(request="STATUS\n", receive=SPEC.receive)
    async with serving(status_server) as target:
        result = await run_check(target, spec, 2)
    assert result.ok is False
    assert result.reason == "receive '^state: (up|ready)' not found in 'hello state: confused'"


async def test_empty_receive_means_any_reply(no_leaks: None) -> None:
    async with serving(status_server) as target:
        result = await run_check(target, SimpleTcpSpec(request="x"), 2)
    assert (result.ok, result.reason) == (True, "reply 'hello state: confused'")


async def test_server_closing_silently_is_down(no_leaks: None) -> None:
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    async with serving(mute) as target:
        result = await run_check(target, SPEC, 2)
    assert (result.ok, result.reason) == (False, "connection closed without a reply")


async def test_answer_on_an_open_connection_is_enough(no_leaks: None) -> None:
    released = asyncio.Event()

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"state: ready\n")
        await writer.drain()
        await released.wait()  # keeps the connection open until the check has decided
        writer.close()

    async with serving(chatty) as target:
        result = await run_check(target, SPEC, 2)
        released.set()
        await asyncio.sleep(0.01)
    assert (result.ok, result.reason) == (True, "reply 'state: ready'")


async def test_refused(no_leaks: None) -> None:
    target = Target(address=ip_address("127.0.0.1"), port=free_port())
    result = await run_check(target, SPEC, 2)
    assert (result.ok, result.reason) == (False, "connection refused")


async def test_hung_server_times_out() -> None:
    with hung_tcp("127.0.0.1") as port:
        target = Target(address=ip_address("127.0.0.1"), port=port)
        await assert_times_out_cleanly(target, SPEC, 0.3)
