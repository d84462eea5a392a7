"""service=sip: an OPTIONS request for ``sip:<login>``, up when the answer is ``SIP/2.0 200 OK``.

Over UDP or TCP as the virtual service's protocol says. Provisional (1xx) answers are skipped;
the first final answer decides. Unlike ldirectord, the Via header names the transport really used.
"""

from __future__ import annotations

import asyncio
import secrets

from checks._io import FAILURES, describe, printable, tcp_stream, udp_endpoint
from checks.types import Result, SipSpec, Target, Transport


def options(target: Target, spec: SipSpec, local: tuple[str, int]) -> bytes:
    """The OPTIONS request, sent from ``local`` (host, port)."""
    host = f"[{local[0]}]" if ":" in local[0] else local[0]
    proto = "TCP" if target.transport is Transport.TCP else "UDP"
    branch = "z9hG4bK" + secrets.token_hex(8)
    lines = [
        f"OPTIONS sip:{spec.login} SIP/2.0",
        f"Via: SIP/2.0/{proto} {host}:{local[1]};branch={branch}",
        "Max-Forwards: 70",
        f"To: <sip:{spec.login}>",
        f"From: <sip:{spec.login}>;tag={secrets.token_hex(4)}",
        f"Call-ID: {secrets.token_hex(8)}@{host}",
        "CSeq: 63104 OPTIONS",
        f"Contact: <sip:{spec.login}@{host}:{local[1]}>",
        "Accept: application/sdp",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def _verdict(status_line: str) -> Result:
    if status_line.startswith("SIP/2.0 200 OK"):
        return Result(True, status_line)
    if status_line.startswith("SIP/2.0 "):
        return Result(False, printable(status_line))
    return Result(False, f"not a SIP answer: '{printable(status_line)}'")


#: Answers read before giving up on a final one: a server may send a few 1xx, not a stream.
MAX_ANSWERS = 16


def _is_provisional(status_line: str) -> bool:
    return status_line.startswith("SIP/2.0 1")


async def _udp(target: Target, spec: SipSpec) -> Result:
    transport, proto = await udp_endpoint(target)
    try:
        local = transport.get_extra_info("sockname")
        transport.sendto(options(target, spec, (local[0], local[1])))
        for _ in range(MAX_ANSWERS):
            answer = await proto.queue.get()
            if isinstance(answer, OSError):
                return Result(False, describe(answer))
            line = answer.split(b"\r\n", 1)[0].decode("utf-8", "replace")
            if not _is_provisional(line):
                return _verdict(line)
    finally:
        transport.abort()
    return _no_final_answer()


async def _tcp(target: Target, spec: SipSpec) -> Result:
    async with tcp_stream(target) as (reader, writer):
        local = writer.get_extra_info("sockname")
        writer.write(options(target, spec, (local[0], local[1])))
        await writer.drain()
        for _ in range(MAX_ANSWERS):
            line = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n", 1)[0]
            status = line.decode("utf-8", "replace")
            # Provisional answers to OPTIONS carry no body, so the next header block follows.
            if not _is_provisional(status):
                return _verdict(status)
    return _no_final_answer()


def _no_final_answer() -> Result:
    return Result(False, f"no final SIP answer after {MAX_ANSWERS} provisional ones")


async def check(target: Target, spec: SipSpec) -> Result:
    """Up on a ``SIP/2.0 200 OK`` answer to OPTIONS."""
    try:
        if target.transport is Transport.UDP:
            return await _udp(target, spec)
        return await _tcp(target, spec)
    except asyncio.LimitOverrunError:
        return Result(False, "SIP answer header too long")
    except FAILURES as exc:
        return Result(False, describe(exc))
