"""service=sip against a real kamailio, over UDP and TCP, on 127.0.0.1 and ::1."""

from __future__ import annotations

from ipaddress import ip_address

import pytest
import servers
from servers import SIP_LOGIN

import checks
from checks.types import SipSpec, Target, Transport

UDP_TCP = pytest.mark.parametrize("transport", [Transport.UDP, Transport.TCP], ids=["udp", "tcp"])


def at(port: int, transport: Transport, address: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(address), port=port, transport=transport)


@pytest.mark.daemon
@UDP_TCP
@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
async def test_options_answered_200(kamailio: int, transport: Transport, address: str) -> None:
    result = await checks.probe(at(kamailio, transport, address), SipSpec(login=SIP_LOGIN), 3)
    assert (result.ok, result.reason) == (True, "SIP/2.0 200 OK")


@pytest.mark.daemon
@UDP_TCP
async def test_other_answer_is_down(kamailio: int, transport: Transport) -> None:
    spec = SipSpec(login="someone-else@127.0.0.1")
    result = await checks.probe(at(kamailio, transport), spec, 3)
    assert (result.ok, result.reason) == (False, "SIP/2.0 404 Not Here")


@UDP_TCP
async def test_refused(transport: Transport, no_leaks: None) -> None:
    result = await checks.probe(at(servers.free_port(), transport), SipSpec(login=SIP_LOGIN), 3)
    assert (result.ok, result.reason) == (False, "connection refused")


async def test_silent_udp_times_out(no_leaks: None) -> None:
    with servers.silent_udp("127.0.0.1") as port:
        result = await checks.probe(at(port, Transport.UDP), SipSpec(login=SIP_LOGIN), 0.3)
    assert (result.ok, result.reason) == (False, "timed out after 0.3s")


async def test_hung_tcp_times_out(no_leaks: None) -> None:
    with servers.silent_listener("127.0.0.1") as port:
        result = await checks.probe(at(port, Transport.TCP), SipSpec(login=SIP_LOGIN), 0.3)
    assert (result.ok, result.reason) == (False, "timed out after 0.3s")


def test_options_request_is_well_formed() -> None:
    from checks.sip import options

    text = options(at(5060, Transport.TCP, "::1"), SipSpec(login="a@b"), ("::1", 4000)).decode()
    lines = text.split("\r\n")
    assert lines[0] == "OPTIONS sip:a@b SIP/2.0"
    assert lines[1].startswith("Via: SIP/2.0/TCP [::1]:4000;branch=z9hG4bK")
    assert "Content-Length: 0" in lines
    assert text.endswith("\r\n\r\n")
