"""service=dns: ask the real server for ``query`` over UDP or TCP with dnspython.

An A query, or a PTR query when ``query`` is an IP address, as ldirectord does. Up when an answer
record of that type matches ``receive`` (the A address, or the PTR target name). An empty
``receive`` means "any such answer": ldirectord marks every real down in that case (bug B19).
"""

from __future__ import annotations

import ipaddress
import socket

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.reversename

from checks._io import describe, family, quote
from checks.types import DnsSpec, Result, Target


def question(query: str) -> tuple[dns.name.Name, dns.rdatatype.RdataType]:
    """The name and type asked for: PTR for an address, else A for the name (made absolute)."""
    try:
        address = ipaddress.ip_address(query)
    except ValueError:
        return dns.name.from_text(query), dns.rdatatype.A
    return dns.reversename.from_address(str(address)), dns.rdatatype.PTR


def _answers(response: dns.message.Message, rdtype: dns.rdatatype.RdataType) -> list[str]:
    found: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype == rdtype:
            found.extend(
                rdata.address if rdtype == dns.rdatatype.A else rdata.target.to_text()
                for rdata in rrset
            )
    return found


async def _tcp(request: dns.message.Message, target: Target) -> dns.message.Message:
    return await dns.asyncquery.tcp(request, str(target.address), port=target.port)


async def _udp(request: dns.message.Message, target: Target) -> dns.message.Message:
    # A connected socket, so that an ICMP port unreachable reads as "connection refused"
    # at once instead of a silent wait for the timeout.
    backend = dns.asyncbackend.get_backend("asyncio")
    where = (str(target.address), target.port)
    make_socket = backend.make_socket
    connected = await make_socket(  # type: ignore[no-untyped-call]
        family(target), socket.SOCK_DGRAM, 0, None, where
    )
    async with connected as sock:
        return await dns.asyncquery.udp(request, where[0], port=target.port, sock=sock)


async def check(target: Target, spec: DnsSpec) -> Result:
    """Up when the answer holds an A (or PTR) record matching ``receive``."""
    try:
        name, rdtype = question(spec.query)
    except dns.exception.DNSException as exc:
        return Result(False, f"bad query {spec.query!r}: {exc}")
    request = dns.message.make_query(name, rdtype)
    try:
        response = await (_tcp if spec.tcp else _udp)(request, target)
    except dns.exception.DNSException as exc:
        return Result(False, f"bad DNS response: {quote(str(exc))}")
    except (OSError, EOFError) as exc:
        return Result(False, describe(exc) if isinstance(exc, OSError) else "connection closed")
    kind = dns.rdatatype.to_text(rdtype)
    if response.rcode() != dns.rcode.NOERROR:
        return Result(False, f"{dns.rcode.to_text(response.rcode())} for {kind} {name}")
    answers = _answers(response, rdtype)
    if not answers:
        return Result(False, f"no {kind} record for {name}")
    if spec.receive is None:
        return Result(True, f"{kind} {quote(' '.join(answers))}")
    matching = [a for a in answers if spec.receive.search(a)]
    if not matching:
        got = quote(" ".join(answers))
        return Result(False, f"receive '{quote(spec.receive.pattern)}' not found in {kind} {got}")
    return Result(True, f"{kind} {quote(' '.join(matching))}")
