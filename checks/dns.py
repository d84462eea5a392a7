"""service=dns: ask the real server for ``query`` over UDP or TCP with dnspython.

The record type is the spec's ``qtype``, else ldirectord's: an A query, or a PTR query when
``query`` is an IP address. Up when an answer record of that type and of class IN matches
``receive``, read as text: the address of A and AAAA (AAAA in its canonical short form), the
target name of PTR, CNAME and NS, ``PREFERENCE EXCHANGE`` of MX, ``PRIORITY WEIGHT PORT TARGET``
of SRV, the strings of TXT joined, and the zone file form of SOA. For AAAA, a ``receive`` that
is itself an IPv6 address is compared as an address (``0:0::1`` matches an answer ``::1``, and
``::1`` does not match ``fd00::1``).

Answers of another class or with rdata of an unexpected shape are not records of the kind asked
for: alone, they make a down result that names them. An empty ``receive`` means "any such
answer": ldirectord marks every real down in that case.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.MX
import dns.rdtypes.ANY.NS
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.reversename

from checks._io import describe, family, printable
from checks.types import DnsQueryType, DnsSpec, Result, Target


def question(
    query: str, qtype: DnsQueryType | None = None
) -> tuple[dns.name.Name, dns.rdatatype.RdataType]:
    """The name and type asked for: ``qtype`` for the name, else PTR for an address and A for
    a name. A PTR query for an address asks for its reverse name."""
    try:
        address = ipaddress.ip_address(query)
    except ValueError:
        rdtype = dns.rdatatype.A if qtype is None else dns.rdatatype.from_text(qtype)
        return dns.name.from_text(query), rdtype
    if qtype not in (None, DnsQueryType.PTR):
        raise ValueError(f"a {qtype} query needs a name, not an address")
    return dns.reversename.from_address(str(address)), dns.rdatatype.PTR


def _text(rdata: dns.rdata.Rdata) -> str | None:
    """The value of one answer record as ``receive`` sees it; None for an unexpected shape."""
    match rdata:
        case dns.rdtypes.IN.A.A():
            return str(rdata.address)
        case dns.rdtypes.IN.AAAA.AAAA():
            return ipaddress.IPv6Address(rdata.address).compressed
        case dns.rdtypes.ANY.PTR.PTR() | dns.rdtypes.ANY.CNAME.CNAME() | dns.rdtypes.ANY.NS.NS():
            return str(rdata.target.to_text())
        case dns.rdtypes.ANY.MX.MX():
            return f"{rdata.preference} {rdata.exchange.to_text()}"
        case dns.rdtypes.IN.SRV.SRV():
            return f"{rdata.priority} {rdata.weight} {rdata.port} {rdata.target.to_text()}"
        case dns.rdtypes.ANY.TXT.TXT():
            return b"".join(rdata.strings).decode("utf-8", "replace")
        case dns.rdtypes.ANY.SOA.SOA():
            return str(rdata.to_text())
    return None


def _answers(
    response: dns.message.Message, rdtype: dns.rdatatype.RdataType
) -> tuple[list[str], str | None]:
    """The values of the records of ``rdtype`` answered, and what else of that type came."""
    found: list[str] = []
    other: str | None = None
    for rrset in response.answer:
        if rrset.rdtype != rdtype:
            continue  # a CNAME on the way to the address, say
        if rrset.rdclass != dns.rdataclass.IN:
            other = other or f"class {dns.rdataclass.to_text(rrset.rdclass)}"
            continue
        for rdata in rrset:
            text = _text(rdata)
            if text is None:
                other = other or "unreadable rdata"
            else:
                found.append(text)
    return found, other


@functools.lru_cache(maxsize=1024)
def _address(pattern: str) -> ipaddress.IPv6Address | None:
    """The IPv6 address a receive pattern spells, if it is one (brackets allowed)."""
    try:
        return ipaddress.IPv6Address(pattern.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def _matches(receive: re.Pattern[str], answer: str, rdtype: dns.rdatatype.RdataType) -> bool:
    if rdtype == dns.rdatatype.AAAA and (wanted := _address(receive.pattern)) is not None:
        return ipaddress.IPv6Address(answer) == wanted
    return receive.search(answer) is not None


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
    """Up when the answer holds a record of the type asked for matching ``receive``."""
    try:
        name, rdtype = question(spec.query, spec.qtype)
    except (dns.exception.DNSException, ValueError) as exc:
        return Result(False, f"bad query {printable(repr(spec.query))}: {printable(str(exc))}")
    request = dns.message.make_query(name, rdtype)
    try:
        response = await (_tcp if spec.tcp else _udp)(request, target)
    except (dns.exception.DNSException, ValueError) as exc:
        # dnspython raises ValueError (UnicodeError among them) for some malformed names.
        return Result(False, f"bad DNS response: {printable(str(exc)) or type(exc).__name__}")
    except (OSError, EOFError) as exc:
        return Result(False, describe(exc))
    kind = dns.rdatatype.to_text(rdtype)
    if response.rcode() != dns.rcode.NOERROR:
        return Result(False, f"{dns.rcode.to_text(response.rcode())} for {kind} {name}")
    answers, other = _answers(response, rdtype)
    if not answers:
        seen = f" (the answer's {kind} records have {other})" if other else ""
        return Result(False, f"no {kind} record for {name}{seen}")
    if spec.receive is None:
        return Result(True, f"{kind} {printable(' '.join(answers))}")
    matching = [a for a in answers if _matches(spec.receive, a, rdtype)]
    if not matching:
        got = printable(" ".join(answers))
        pattern = printable(spec.receive.pattern)
        return Result(False, f"receive '{pattern}' not found in {kind} {got}")
    return Result(True, f"{kind} {printable(' '.join(matching))}")
