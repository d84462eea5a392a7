"""checktype=ping (and connect on UDP services): ICMP echo to the real server, IPv4 and IPv6.

Uses a raw ICMP socket, or the unprivileged ICMP datagram socket when raw sockets are not
allowed (net.ipv4.ping_group_range). Up on the first matching echo reply.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
from ipaddress import IPv6Address

from checks._io import describe, sockaddr
from checks.types import PingSpec, Result, Target

_ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
_ECHO_REPLY = {socket.AF_INET: 0, socket.AF_INET6: 129}
_PAYLOAD = b"ldirector-ping".ljust(56, b".")  # 56 + 8 = Net::Ping's 64-byte packets
_sequence = itertools.count(1)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _open(af: socket.AddressFamily) -> tuple[socket.socket, bool]:
    """An ICMP socket for ``af`` and whether it is raw (replies carry an IPv4 header)."""
    proto = socket.IPPROTO_ICMP if af == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        sock = socket.socket(af, socket.SOCK_RAW, proto)
        raw = True
    except PermissionError:
        sock = socket.socket(af, socket.SOCK_DGRAM, proto)
        raw = False
    sock.setblocking(False)
    return sock, raw


def _echo(af: socket.AddressFamily, ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", _ECHO_REQUEST[af], 0, 0, ident, seq)
    if af == socket.AF_INET6:  # the kernel fills in the ICMPv6 checksum (RFC 3542)
        return header + _PAYLOAD
    csum = _checksum(header + _PAYLOAD)
    return struct.pack("!BBHHH", _ECHO_REQUEST[af], 0, csum, ident, seq) + _PAYLOAD


def _is_reply(
    af: socket.AddressFamily, packet: bytes, raw: bool, ident: int | None, seq: int
) -> bool:
    if raw and af == socket.AF_INET:
        packet = packet[(packet[0] & 0x0F) * 4 :] if packet else packet
    if len(packet) < 8:
        return False
    kind, _code, _csum, got_ident, got_seq = struct.unpack("!BBHHH", packet[:8])
    # A datagram ICMP socket rewrites the identifier and filters replies itself.
    return kind == _ECHO_REPLY[af] and got_seq == seq and (ident is None or got_ident == ident)


async def _attempt(sock: socket.socket, target: Target, raw: bool, ident: int, wait: float) -> bool:
    # The socket is watched with add_reader rather than loop.sock_recvfrom/sock_sendto, which
    # uvloop does not implement: the same code runs on asyncio's loop and on uvloop.
    loop = asyncio.get_running_loop()
    af = socket.AF_INET6 if isinstance(target.address, IPv6Address) else socket.AF_INET
    seq = next(_sequence) & 0xFFFF
    addr = (*sockaddr(target)[:1], 0, *sockaddr(target)[2:])
    answered: asyncio.Future[bool] = loop.create_future()
    want = str(target.address)

    def readable() -> None:
        while not answered.done():
            try:
                packet, source = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                answered.set_exception(exc)
                return
            if source[0] == want and _is_reply(af, packet, raw, ident if raw else None, seq):
                answered.set_result(True)

    loop.add_reader(sock, readable)
    try:
        # One 64-byte datagram on a fresh socket: the send buffer has room, so it never blocks.
        sock.sendto(_echo(af, ident, seq), addr)
        async with asyncio.timeout(wait):
            return await answered
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(sock)


async def check(target: Target, spec: PingSpec) -> Result:
    """Up when one of ``spec.count`` echo requests, each given ``attempt_timeout``, is answered."""
    af = socket.AF_INET6 if isinstance(target.address, IPv6Address) else socket.AF_INET
    try:
        sock, raw = _open(af)
    except OSError as exc:
        return Result(False, f"cannot open ICMP socket: {describe(exc)}")
    with sock:
        ident = os.getpid() & 0xFFFF
        count = max(1, spec.count)
        for attempt in range(1, count + 1):
            try:
                if await _attempt(sock, target, raw, ident, spec.attempt_timeout):
                    return Result(True, f"echo reply ({attempt} of {count})")
            except OSError as exc:
                return Result(False, describe(exc))
    tries = "echo request" if count == 1 else f"{count} echo requests"
    return Result(False, f"no reply to {tries}")
