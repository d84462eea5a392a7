"""Socket helpers shared by the check modules: connecting, bounded reads, and failure wording.

Checks sit at the I/O edge of the pipeline; these helpers keep every one of them closing its
socket on every path (success, failure, cancellation) and naming failures the same way.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import IPv6Address

from checks.types import Target

#: Upper bound on what any check reads from a server: a check needs a line or a page, not a stream.
MAX_READ = 64 * 1024

_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EPIPE: "connection closed by peer",
}


def describe(exc: BaseException) -> str:
    """One line naming an expected network failure the way an operator would say it."""
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by server"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_WORDS:
        return _ERRNO_WORDS[exc.errno]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def sockaddr(target: Target) -> tuple[str, int] | tuple[str, int, int, int]:
    """The socket address of ``target`` for its address family."""
    if isinstance(target.address, IPv6Address):
        return (str(target.address), target.port, 0, 0)
    return (str(target.address), target.port)


def family(target: Target) -> socket.AddressFamily:
    """AF_INET or AF_INET6, as the target's address requires."""
    return socket.AF_INET6 if isinstance(target.address, IPv6Address) else socket.AF_INET


async def tcp_connect(target: Target) -> socket.socket:
    """A connected non-blocking TCP socket; the caller closes it. Closed here if connect fails."""
    sock = socket.socket(family(target), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, sockaddr(target))
    except BaseException:
        sock.close()
        raise
    return sock


@asynccontextmanager
async def tcp_stream(
    target: Target, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A stream pair to ``target``, closed on leaving the block whatever happened inside it."""
    sock = await tcp_connect(target)
    try:
        reader, writer = await asyncio.open_connection(
            sock=sock, ssl=tls, server_hostname="" if tls else None, limit=MAX_READ
        )
    except BaseException:
        sock.close()
        raise
    try:
        yield reader, writer
    finally:
        # abort() rather than close(): no lingering TLS close_notify or unsent data to wait for.
        writer.transport.abort()


def insecure_tls() -> ssl.SSLContext:
    """A client context that encrypts but does not verify: real servers are addressed by IP."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def quote(text: str, limit: int = 80) -> str:
    """``text`` made printable on one line and cut to ``limit`` characters, for reasons."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
