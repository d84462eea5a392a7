"""checktype=connect: a TCP handshake, on 127.0.0.1 and ::1."""

from __future__ import annotations

import socket

import pytest

from checks.types import ConnectSpec
from tests.support.checkrun import assert_times_out_cleanly, run_check, target
from tests.support.servers import black_hole, free_port, hung_tcp

ADDRESSES = pytest.mark.parametrize("address", ["127.0.0.1", "::1"])


@ADDRESSES
async def test_listener_is_up(address: str, no_leaks: None) -> None:
    af = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(af, socket.SOCK_STREAM) as listener:
        listener.bind((address, 0))
        listener.listen(8)
        result = await run_check(target(listener.getsockname()[1], address), ConnectSpec(), 2)
    assert (result.ok, result.reason) == (True, "connected")


@ADDRESSES
async def test_refused(address: str, no_leaks: None) -> None:
    result = await run_check(target(free_port(), address), ConnectSpec(), 2)
    assert (result.ok, result.reason) == (False, "connection refused")


@ADDRESSES
async def test_black_hole_times_out(address: str) -> None:
    with black_hole(address) as port:
        await assert_times_out_cleanly(target(port, address), ConnectSpec(), 0.3)


async def test_a_listener_that_never_answers_still_connects(no_leaks: None) -> None:
    # connect only proves the handshake, exactly as ldirectord's connect check does.
    with hung_tcp("127.0.0.1") as port:
        result = await run_check(target(port, "127.0.0.1"), ConnectSpec(), 1)
    assert result.ok
