"""service=dns against a real dnsmasq, over UDP and TCP, on 127.0.0.1 and ::1, and against a
hostile server on loopback whose answers are not what a resolver expects."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import cast

import dns.message
import dns.rdata
import dns.rdtypes.ANY.TXT
import dns.rrset
import pytest
from dns.rdataclass import RdataClass
from dns.rdatatype import RdataType

from checks.types import DnsQueryType, DnsSpec, Target
from tests.support.checkrun import assert_times_out_cleanly, run_check, target
from tests.support.daemons_web import DNS_ADDRESS, DNS_ADDRESS6, DNS_NAME, DNS_RECORDS
from tests.support.servers import free_port, hung_tcp, hung_udp

ADDRESSES = ["127.0.0.1", "::1"]


@pytest.mark.daemon
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("address", ADDRESSES)
async def test_a_record_matches_receive(dnsmasq: int, address: str, tcp: bool) -> None:
    spec = DnsSpec(query=DNS_NAME, receive=re.compile(re.escape(DNS_ADDRESS)), tcp=tcp)
    result = await run_check(target(dnsmasq, address), spec, 3)
    assert (result.ok, result.reason) == (True, f"A {DNS_ADDRESS}")


@pytest.mark.daemon
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_ptr_query_for_an_address(dnsmasq: int, tcp: bool) -> None:
    spec = DnsSpec(query=DNS_ADDRESS, receive=re.compile(r"^www\.test"), tcp=tcp)
    result = await run_check(target(dnsmasq), spec, 3)
    assert (result.ok, result.reason) == (True, f"PTR {DNS_NAME}.")


@pytest.mark.daemon
async def test_empty_receive_means_any_answer(dnsmasq: int) -> None:
    # ldirectord marks the real down here; an answer is what the operator asked for.
    result = await run_check(target(dnsmasq), DnsSpec(query=DNS_NAME), 3)
    assert (result.ok, result.reason) == (True, f"A {DNS_ADDRESS}")


@pytest.mark.daemon
@pytest.mark.parametrize("address", ADDRESSES)
async def test_wrong_address_is_down(dnsmasq: int, address: str) -> None:
    spec = DnsSpec(query=DNS_NAME, receive=re.compile(r"^10\."))
    result = await run_check(target(dnsmasq, address), spec, 3)
    assert (result.ok, result.reason) == (False, f"receive '^10\\.' not found in A {DNS_ADDRESS}")


@pytest.mark.daemon
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
async def test_unknown_name_is_down(dnsmasq: int, tcp: bool) -> None:
    result = await run_check(target(dnsmasq), DnsSpec(query="nothing.test", tcp=tcp), 3)
    assert (result.ok, result.reason) == (False, "NXDOMAIN for A nothing.test.")


# --- dnsquerytype: AAAA and the other record types ---------------------------------------------


@pytest.mark.daemon
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("address", ADDRESSES)
async def test_aaaa_record_is_up(dnsmasq: int, address: str, tcp: bool) -> None:
    spec = DnsSpec(query=DNS_NAME, qtype=DnsQueryType.AAAA, tcp=tcp)
    result = await run_check(target(dnsmasq, address), spec, 3)
    assert (result.ok, result.reason) == (True, f"AAAA {DNS_ADDRESS6}")


@pytest.mark.daemon
@pytest.mark.parametrize("written", ["fd00:0:0::5", "FD00::0005", "[fd00::5]", "fd00::5"])
async def test_aaaa_receive_is_compared_as_an_address(dnsmasq: int, written: str) -> None:
    spec = DnsSpec(query=DNS_NAME, qtype=DnsQueryType.AAAA, receive=re.compile(written))
    result = await run_check(target(dnsmasq), spec, 3)
    assert (result.ok, result.reason) == (True, f"AAAA {DNS_ADDRESS6}")


@pytest.mark.daemon
@pytest.mark.parametrize("written", ["::5", "fd00::", "fd00::50"])
async def test_aaaa_another_address_is_down_even_when_it_matches_as_text(
    dnsmasq: int, written: str
) -> None:
    # As regular expressions "::5" and "fd00::" would be found in "fd00::5".
    spec = DnsSpec(query=DNS_NAME, qtype=DnsQueryType.AAAA, receive=re.compile(written))
    result = await run_check(target(dnsmasq), spec, 3)
    assert (result.ok, result.reason) == (
        False,
        f"receive '{written}' not found in AAAA {DNS_ADDRESS6}",
    )


@pytest.mark.daemon
async def test_aaaa_receive_that_is_no_address_is_a_regular_expression(dnsmasq: int) -> None:
    spec = DnsSpec(query=DNS_NAME, qtype=DnsQueryType.AAAA, receive=re.compile("^fd00:"))
    assert (await run_check(target(dnsmasq), spec, 3)).ok


@pytest.mark.daemon
async def test_aaaa_through_a_cname_and_for_an_unknown_name(dnsmasq: int) -> None:
    # alias.test is a CNAME to www.test: the AAAA comes through it, after the CNAME.
    spec = DnsSpec(query="alias.test", qtype=DnsQueryType.AAAA)
    result = await run_check(target(dnsmasq), spec, 3)
    assert (result.ok, result.reason) == (True, f"AAAA {DNS_ADDRESS6}")
    unknown = DnsSpec(query="mail.test", qtype=DnsQueryType.AAAA)
    result = await run_check(target(dnsmasq), unknown, 3)
    assert (result.ok, result.reason) == (False, "NXDOMAIN for AAAA mail.test.")


@pytest.mark.daemon
@pytest.mark.parametrize("kind", sorted(DNS_RECORDS))
async def test_other_record_types(dnsmasq: int, kind: str) -> None:
    name, value = DNS_RECORDS[kind]
    spec = DnsSpec(query=name, qtype=DnsQueryType(kind), receive=re.compile(re.escape(value)))
    result = await run_check(target(dnsmasq), spec, 3)
    assert (result.ok, result.reason) == (True, f"{kind} {value}")


@pytest.mark.daemon
async def test_ptr_for_a_v6_address_and_for_a_reverse_name(dnsmasq: int) -> None:
    by_address = DnsSpec(query=DNS_ADDRESS6, qtype=DnsQueryType.PTR)
    result = await run_check(target(dnsmasq), by_address, 3)
    assert (result.ok, result.reason) == (True, f"PTR {DNS_NAME}.")
    by_name = DnsSpec(query="5.0.0.127.in-addr.arpa", qtype=DnsQueryType.PTR)
    result = await run_check(target(dnsmasq), by_name, 3)
    assert (result.ok, result.reason) == (True, f"PTR {DNS_NAME}.")


async def test_an_address_for_a_type_that_needs_a_name_is_a_clear_failure() -> None:
    spec = DnsSpec(query="127.0.0.5", qtype=DnsQueryType.AAAA)
    result = await run_check(target(9), spec, 1)
    assert (result.ok, result.reason) == (
        False,
        "bad query '127.0.0.5': a AAAA query needs a name, not an address",
    )


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("address", ADDRESSES)
async def test_refused(address: str, tcp: bool, no_leaks: None) -> None:
    result = await run_check(target(free_port(), address), DnsSpec(query="a.test", tcp=tcp), 3)
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("address", ADDRESSES)
async def test_silent_udp_server_times_out(address: str) -> None:
    with hung_udp(address) as port:
        await assert_times_out_cleanly(target(port, address), DnsSpec(query="a.test"), 0.3)


async def test_hung_tcp_server_times_out() -> None:
    with hung_tcp("127.0.0.1") as port:
        await assert_times_out_cleanly(target(port), DnsSpec(query="a.test", tcp=True), 0.3)


async def test_bad_query_is_a_clear_failure() -> None:
    result = await run_check(target(9), DnsSpec(query="a" * 70 + ".test"), 1)
    assert not result.ok
    assert result.reason.startswith("bad query")


# --- a hostile server: answers a resolver does not expect --------------------------------------

Answer = Callable[[dns.message.Message], bytes]


class _Hostile(asyncio.DatagramProtocol):
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.answer(dns.message.from_wire(data)), addr)


@asynccontextmanager
async def hostile_dns(answer: Answer) -> AsyncIterator[Target]:
    """A UDP DNS server on 127.0.0.1 replying to every query with the bytes ``answer(query)``."""
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Hostile(answer), local_addr=("127.0.0.1", 0)
    )
    try:
        yield target(transport.get_extra_info("sockname")[1])
    finally:
        transport.close()


def answer_with(rdclass: RdataClass, rdtype: RdataType, rdata: dns.rdata.Rdata) -> Answer:
    """Answer every query with one record of ``rdclass`` and ``rdtype`` holding ``rdata``."""

    def answer(query: dns.message.Message) -> bytes:
        reply = dns.message.make_response(query)
        rrset = dns.rrset.RRset(query.question[0].name, rdclass, rdtype)
        rrset.add(rdata, 60)
        reply.answer.append(rrset)
        return reply.to_wire()

    return answer


def generic(rdclass: RdataClass, rdtype: RdataType, wire: bytes) -> Answer:
    """Answer with a record given as raw rdata: the client parses it as the class dictates."""
    return answer_with(rdclass, rdtype, dns.rdata.GenericRdata(rdclass, rdtype, wire))


A, PTR, CH = RdataType.A, RdataType.PTR, RdataClass.CH
HOSTILE = {
    # A class dnspython has no rdata type for: an A record without an address attribute.
    "unknown-class": (A, generic(RdataClass.make(1234), A, b"\x7f\x00\x00\x01"), "CLASS1234"),
    # Chaosnet's A record is a domain and a number, not an IP address.
    "chaos-class": (A, generic(CH, A, b"\x02ch\x04test\x00\x00\x01"), "CH"),
    "unknown-class-ptr": (PTR, generic(RdataClass.make(65280), PTR, b"\x00"), "CLASS65280"),
}


@pytest.mark.parametrize(("rdtype", "answer", "rdclass"), HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize("receive", [None, re.compile("127")], ids=["any", "receive"])
async def test_answers_of_another_class_are_a_clear_down(
    rdtype: RdataType, answer: Answer, rdclass: str, receive: re.Pattern[str] | None, no_leaks: None
) -> None:
    query = "www.test" if rdtype == A else "127.0.0.1"
    async with hostile_dns(answer) as where:
        result = await run_check(where, DnsSpec(query=query, receive=receive), 3)
    kind = rdtype.name
    assert not result.ok
    assert result.reason.startswith(f"no {kind} record for ")
    assert result.reason.endswith(f"(the answer's {kind} records have class {rdclass})")
    assert "\n" not in result.reason


async def test_an_answer_of_the_wrong_type_is_a_clear_down(no_leaks: None) -> None:
    # A PTR record under an A query is not an answer to it.
    ptr = dns.rdata.from_text("IN", "PTR", "x.test.")
    async with hostile_dns(answer_with(RdataClass.IN, PTR, ptr)) as where:
        result = await run_check(where, DnsSpec(query="www.test"), 3)
    assert (result.ok, result.reason) == (False, "no A record for www.test.")


NS_SOA = {
    "NS": ("ns1.test.", "ns1.test."),
    "SOA": (
        "ns1.test. admin.test. 7 3600 600 86400 60",
        "ns1.test. admin.test. 7 3600 600 86400 60",
    ),
}


@pytest.mark.parametrize("kind", sorted(NS_SOA))
async def test_ns_and_soa_answers(kind: str, no_leaks: None) -> None:
    rdtype = RdataType[kind]
    written, shown = NS_SOA[kind]
    rdata = dns.rdata.from_text("IN", kind, written)
    async with hostile_dns(answer_with(RdataClass.IN, rdtype, rdata)) as where:
        spec = DnsSpec(query="test", qtype=DnsQueryType(kind), receive=re.compile("ns1"))
        result = await run_check(where, spec, 3)
    assert (result.ok, result.reason) == (True, f"{kind} {shown}")


async def test_txt_strings_are_joined_and_control_characters_kept_off_the_line(
    no_leaks: None,
) -> None:
    rdata = dns.rdtypes.ANY.TXT.TXT(RdataClass.IN, RdataType.TXT, [b"v=a", b"\nb\x08c"])
    async with hostile_dns(answer_with(RdataClass.IN, RdataType.TXT, rdata)) as where:
        spec = DnsSpec(query="test", qtype=DnsQueryType.TXT, receive=re.compile("^v=a\nb"))
        result = await run_check(where, spec, 3)
    assert (result.ok, result.reason) == (True, "TXT v=a b\\x08c")


async def test_a_garbled_reply_is_a_clear_down(no_leaks: None) -> None:
    whole = answer_with(RdataClass.IN, A, dns.rdata.from_text("IN", "A", "127.0.0.1"))
    async with hostile_dns(lambda query: whole(query)[:-2]) as where:  # the rdata cut short
        result = await run_check(where, DnsSpec(query="www.test"), 3)
    assert not result.ok
    assert result.reason.startswith("bad DNS response: ")
