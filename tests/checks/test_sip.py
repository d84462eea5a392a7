"""service=sip against a real kamailio, over UDP and TCP, on 127.0.0.1 and ::1."""

from __future__ import annotations

import asyncio
import contextlib
from ipaddress import ip_address

import pytest

from checks.types import SipSpec, Target, Transport
from tests.support.checkrun import assert_times_out_cleanly, run_check
from tests.support.daemons_web import SIP_LOGIN
from tests.support.servers import free_port, hung_tcp, hung_udp

UDP_TCP = pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP], ids=["udp", "tcp"])


def at(port: int, transport: Transport, address: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(address), port=port, transport=transport)


@pytest.mark.daemon
@UDP_TCP
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_options_answered_200(kamailio: int, transport: Transport, address: str) -> None:
    result = await run_check(at(kamailio, transport, address), SipSpec(login=SIP_LOGIN), 3)
    assert (result.ok, result.reason) == (True, "SIP/2.0 200 OK")


@pytest.mark.daemon
@UDP_TCP
async def test_other_answer_is_down(kamailio: int, transport: Transport) -> None:
    spec = SipSpec(login="someone-else@127.0.0.1")
    result = await run_check(at(kamailio, transport), spec, 3)
    assert (result.ok, result.reason) == (False, "SIP/2.0 404 Not Here")


@UDP_TCP
async def test_refused(transport: Transport, no_leaks: None) -> None:
    result = await run_check(at(free_port(), transport), SipSpec(login=SIP_LOGIN), 3)
    assert (result.ok, result.reason) == (False, "connection refused")


async def test_silent_udp_times_out() -> None:
    with hung_udp("127.0.0.1") as port:
        await assert_times_out_cleanly(at(port, Transport.UDP), SipSpec(login=SIP_LOGIN), 0.3)


async def test_hung_tcp_times_out() -> None:
    with hung_tcp("127.0.0.1") as port:
        await assert_times_out_cleanly(at(port, Transport.TCP), SipSpec(login=SIP_LOGIN), 0.3)


def test_options_request_is_well_formed() -> None:
    from checks.sip import options

    text = options(at(5060, Transport.TCP, "::1"), SipSpec(login="a@b"), ("::1", 4000)).decode()
    lines = text.split("\r\n")
    assert lines[0] == "OPTIONS sip:a@b SIP/2.0"
    assert lines[1].startswith("Via: SIP/2.0/TCP [::1]:4000;branch=z9hG4bK")
    assert "Content-Length: 0" in lines
    assert text.endswith("\r\n\r\n")


async def test_endless_provisional_answers_are_bounded(no_leaks: None) -> None:
    async def trying(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            await reader.readuntil(b"\r\n\r\n")
            for _ in range(100_000):  # until the check hangs up
                writer.write(b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(0)  # the check runs on this loop too: let it read
        writer.close()

    server = await asyncio.start_server(trying, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        result = await run_check(at(port, Transport.TCP), SipSpec(login=SIP_LOGIN), 3)
    finally:
        server.close()
        await server.wait_closed()
    assert (result.ok, result.reason) == (False, "no final SIP answer after 16 provisional ones")
