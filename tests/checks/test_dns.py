"""service=dns against a real dnsmasq, over UDP and TCP, on 127.0.0.1 and ::1."""

from __future__ import annotations

import re
from ipaddress import ip_address

import pytest
import servers
from servers import DNS_ADDRESS, DNS_NAME

import checks
from checks.types import DnsSpec, Target

ADDRESSES = ["127.0.0.1", "::1"]


def at(port: int, address: str = "127.0.0.1") -> Target:
    return Target(address=ip_address(address), port=port)


@pytest.mark.daemon
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("address", ADDRESSES)
async def test_a_record_matches_receive(dnsmasq: int, address: str, tcp: bool) -> None:
    spec = DnsSpec(query=DNS_NAME, receive=re.compile(re.escape(DNS_ADDRESS)), tcp=tcp)
    result = await checks.probe(at(dnsmasq, address), spec, 3)
    assert (result.ok, result.reason) == (True, f"A {DNS_ADDRESS}")


@pytest.mark.daemon
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_ptr_query_for_an_address(dnsmasq: int, tcp: bool) -> None:
    spec = DnsSpec(query=DNS_ADDRESS, receive=re.compile(r"^www\.test"), tcp=tcp)
    result = await checks.probe(at(dnsmasq), spec, 3)
    assert (result.ok, result.reason) == (True, f"PTR {DNS_NAME}.")


@pytest.mark.daemon
async def test_empty_receive_means_any_answer(dnsmasq: int) -> None:
    # ldirectord marks the real down here (B19); an answer is what the operator asked for.
    result = await checks.probe(at(dnsmasq), DnsSpec(query=DNS_NAME), 3)
    assert (result.ok, result.reason) == (True, f"A {DNS_ADDRESS}")


@pytest.mark.daemon
@pytest.mark.parametrize("address", ADDRESSES)
async def test_wrong_address_is_down(dnsmasq: int, address: str) -> None:
    spec = DnsSpec(query=DNS_NAME, receive=re.compile(r"^10\."))
    result = await checks.probe(at(dnsmasq, address), spec, 3)
    assert (result.ok, result.reason) == (False, f"receive '^10\\.' not found in A {DNS_ADDRESS}")


@pytest.mark.daemon
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_unknown_name_is_down(dnsmasq: int, tcp: bool) -> None:
    result = await checks.probe(at(dnsmasq), DnsSpec(query="nothing.test", tcp=tcp), 3)
    assert (result.ok, result.reason) == (False, "NXDOMAIN for A nothing.test.")


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("address", ADDRESSES)
async def test_refused(address: str, tcp: bool, no_leaks: None) -> None:
    result = await checks.probe(
        at(servers.free_port(), address), DnsSpec(query="a.test", tcp=tcp), 3
    )
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("address", ADDRESSES)
async def test_silent_udp_server_times_out(address: str, no_leaks: None) -> None:
    with servers.silent_udp(address) as port:
        result = await checks.probe(at(port, address), DnsSpec(query="a.test"), 0.3)
    assert (result.ok, result.reason) == (False, "timed out after 0.3s")


async def test_hung_tcp_server_times_out(no_leaks: None) -> None:
    with servers.silent_listener("127.0.0.1") as port:
        result = await checks.probe(at(port), DnsSpec(query="a.test", tcp=True), 0.3)
    assert (result.ok, result.reason) == (False, "timed out after 0.3s")


async def test_bad_query_is_a_clear_failure() -> None:
    result = await checks.probe(at(9), DnsSpec(query="a" * 70 + ".test"), 1)
    assert not result.ok
    assert result.reason.startswith("bad query")
