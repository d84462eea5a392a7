"""The agent check against a loopback asyncio agent: every reply form, bounds and failures."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_address

import pytest

from checks.agent import MAX_LINE
from checks.types import AgentSpec, Target, Weight
from tests.support.checkrun import assert_times_out_cleanly, run_check
from tests.support.servers import free_port, hung_tcp


@asynccontextmanager
async def agent(
    reply: bytes, host: str = "127.0.0.1", *, close: bool = True
) -> AsyncIterator[Target]:
    """An agent that answers every connection with ``reply`` (and then closes, or not)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(reply)
        await writer.drain()
        if close:
            writer.close()
        else:
            await reader.read()  # keep the line open until the check hangs up
            writer.close()

    server = await asyncio.start_server(answer, host, 0)
    try:
        yield Target(address=ip_address(host), port=server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("reply", "ok", "weight"),
    [
        (b"up\n", True, None),
        (b"ready\r\n", True, None),
        (b"75%\n", True, Weight(75, percent=True)),
        (b"UP 75%\n", True, Weight(75, percent=True)),
        (b"ready,50%\n", True, Weight(50, percent=True)),
        (b"250%\n", True, Weight(100, percent=True)),  # never above the configured weight
        (b"0%\n", True, Weight(0, percent=True)),
        (b"drain\n", True, Weight(0, percent=True)),
        (b"down\n", False, Weight(0, percent=True)),
        (b"fail\n", False, Weight(0, percent=True)),
        (b"stopped\n", False, Weight(0, percent=True)),
        (b"maint\n", False, Weight(0, percent=True)),
        (b"down 50%\n", False, Weight(0, percent=True)),
        (b"up # extra words agents send are ignored\n", True, None),
    ],
)
async def test_each_reply_form(reply: bytes, ok: bool, weight: Weight | None) -> None:
    async with agent(reply) as target:
        result = await run_check(target, AgentSpec(), 3)
    assert (result.ok, result.weight) == (ok, weight), result.reason


async def test_ipv6_and_a_reply_without_newline(no_leaks: None) -> None:
    async with agent(b"80%", "::1") as target:
        result = await run_check(target, AgentSpec(), 3)
    assert (result.ok, result.weight) == (True, Weight(80, percent=True))


async def test_the_line_is_judged_while_the_agent_keeps_the_connection(no_leaks: None) -> None:
    async with agent(b"drain\n", close=False) as target:
        result = await run_check(target, AgentSpec(), 3)
    assert result.ok and result.weight == Weight(0, percent=True)
    assert result.reason == "agent says drain: 'drain'"


async def test_a_reply_with_nothing_known_is_a_failure() -> None:
    async with agent(b"hello there\n") as target:
        result = await run_check(target, AgentSpec(), 3)
    assert not result.ok and "no state or weight" in result.reason


async def test_silence_is_a_failure() -> None:
    async with agent(b"") as target:
        result = await run_check(target, AgentSpec(), 3)
    assert (result.ok, result.reason) == (False, "agent closed the connection without a reply")


async def test_a_flood_is_read_only_up_to_the_bound(no_leaks: None) -> None:
    async with agent(b"x" * (MAX_LINE * 4) + b" up\n", close=False) as target:
        result = await run_check(target, AgentSpec(), 3)
    assert not result.ok  # " up" lies past the bound: never read
    assert len(result.reason) < 200


async def test_hostile_text_is_not_echoed_raw() -> None:
    async with agent(b"up \x1b[2J\x07\n") as target:
        result = await run_check(target, AgentSpec(), 3)
    assert result.ok and "\x1b" not in result.reason and "\x07" not in result.reason


async def test_send_is_written_first() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        writer.write(b"60%\n" if line == b"status\n" else b"down\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        target = Target(address=ip_address("127.0.0.1"), port=server.sockets[0].getsockname()[1])
        result = await run_check(target, AgentSpec(send="status\n"), 3)
    finally:
        server.close()
        await server.wait_closed()
    assert result.weight == Weight(60, percent=True)


async def test_refused() -> None:
    target = Target(address=ip_address("127.0.0.1"), port=free_port())
    result = await run_check(target, AgentSpec(), 3)
    assert (result.ok, result.reason) == (False, "connection refused")


async def test_hung_agent_times_out() -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(
            Target(address=ip_address("127.0.0.1"), port=port), AgentSpec()
        )
