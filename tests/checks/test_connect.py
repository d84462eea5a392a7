"""checktype=connect: a TCP handshake, on 127.0.0.1 and ::1."""

from __future__ import annotations

import socket
from ipaddress import ip_address

import pytest
import servers

import checks
from checks.types import ConnectSpec, Target

ADDRESSES = pytest.mark.parametrize("address", ["127.0.0.1", "::1"])


def at(port: int, address: str) -> Target:
    return Target(address=ip_address(address), port=port)


@ADDRESSES
async def test_listener_is_up(address: str, no_leaks: None) -> None:
    af = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(af, socket.SOCK_STREAM) as listener:
        listener.bind((address, 0))
        listener.listen(8)
        result = await checks.probe(at(listener.getsockname()[1], address), ConnectSpec(), 2)
    assert (result.ok, result.reason) == (True, "connected")


@ADDRESSES
async def test_refused(address: str, no_leaks: None) -> None:
    result = await checks.probe(at(servers.free_port(), address), ConnectSpec(), 2)
    assert (result.ok, result.reason) == (False, "connection refused")


@ADDRESSES
async def test_black_hole_times_out(address: str, no_leaks: None) -> None:
    with servers.black_hole(address) as port:
        result = await checks.probe(at(port, address), ConnectSpec(), 0.3)
    assert (result.ok, result.reason) == (False, "timed out after 0.3s")
    assert result.elapsed < 1


async def test_a_listener_that_never_answers_still_connects(no_leaks: None) -> None:
    # connect only proves the handshake, exactly as ldirectord's connect check does.
    with servers.silent_listener("127.0.0.1") as port:
        result = await checks.probe(at(port, "127.0.0.1"), ConnectSpec(), 1)
    assert result.ok
