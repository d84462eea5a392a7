"""What every check shares: connecting, TLS, bounded reads, and the wording of failures.

Checks sit at the I/O edge of the pipeline. These helpers keep every one of them closing its
socket on every path (success, failure, cancellation) and naming a failure the same way whatever
the service: :func:`describe` is the one place an exception becomes a reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import re
import socket
import ssl
from collections.abc import AsyncIterator
from ipaddress import IPv6Address
from typing import Protocol

from checks.types import Target

#: Upper bound on what any check reads from a server: a check needs a line or a page, not a stream.
MAX_READ = 64 * 1024

#: Errnos worded as an operator says them; any other errno reads as its lowercased strerror.
_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by peer",
    errno.ECONNABORTED: "connection aborted",
    errno.ETIMEDOUT: "connection timed out",
    errno.EHOSTUNREACH: "no route to host",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
    errno.EPIPE: "connection closed by server",
}
_CLASS_ERRNOS = (
    (ConnectionRefusedError, errno.ECONNREFUSED),
    (ConnectionResetError, errno.ECONNRESET),
    (ConnectionAbortedError, errno.ECONNABORTED),
    (BrokenPipeError, errno.EPIPE),
    (TimeoutError, errno.ETIMEDOUT),
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ProtocolError(Exception):
    """The server answered, but not as the protocol says a healthy one does."""


#: What a check expects to meet and reports as a down result through :func:`describe`: socket
#: and TLS errors (ssl.SSLError is an OSError), an early end of file, a protocol violation.
FAILURES = (OSError, EOFError, ProtocolError)


def describe(exc: BaseException) -> str:
    """The one-line reason for an expected failure, worded the same in every check."""
    match exc:
        case ProtocolError():
            return printable(str(exc), 300)
        case EOFError():  # asyncio.IncompleteReadError is one
            return "connection closed by server"
        case ssl.SSLError():
            return f"TLS error: {exc.reason or exc.strerror or exc}"
        case OSError():
            # asyncio raises some of these without an errno ("Connection lost"): the class says it.
            code = exc.errno or next((e for c, e in _CLASS_ERRNOS if isinstance(exc, c)), None)
            if code in _ERRNO_WORDS:
                return _ERRNO_WORDS[code]
            if exc.strerror:
                return exc.strerror.lower()
    return printable(str(exc)) or type(exc).__name__


def underlying(exc: BaseException) -> str | None:
    """The reason of the OSError a driver's exception wraps, if any (drivers hide "refused")."""
    seen: BaseException | None = exc
    for _ in range(10):  # exception chains are short; a cycle must not hang the check
        seen = seen.__cause__ or seen.__context__ if seen is not None else None
        if isinstance(seen, OSError):  # ssl.SSLError is an OSError too
            return describe(seen)
    return None


def missing_driver(service: str, module: str) -> str:
    """The reason given when a service's optional driver is not installed."""
    return f"service={service} needs the {module} driver: pip install 'ldirector[{service}]'"


def printable(text: str, limit: int = 120) -> str:
    """``text`` as one bounded line for a reason: whitespace runs become one space, other
    control characters are escaped, and the result is cut to ``limit`` characters."""
    flat = " ".join(text.split())
    flat = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", flat)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --- connecting ---------------------------------------------------------------------------------


def sockaddr(target: Target) -> tuple[str, int] | tuple[str, int, int, int]:
    """The socket address of ``target`` for its address family."""
    if isinstance(target.address, IPv6Address):
        return (str(target.address), target.port, 0, 0)
    return (str(target.address), target.port)


def family(target: Target) -> socket.AddressFamily:
    """AF_INET or AF_INET6, as the target's address requires."""
    return socket.AF_INET6 if isinstance(target.address, IPv6Address) else socket.AF_INET


@functools.cache
def tls_context() -> ssl.SSLContext:
    """A client context that encrypts but does not verify: real servers are addressed by IP.

    One context serves every connection: building one costs milliseconds.
    """
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _NamedContext(ssl.SSLContext):
    """A client context whose every connection presents ``server_name`` (SNI).

    Checks connect to a real's IP address, which TLS never sends as a server name; this
    context replaces whatever name the caller passes, so a real serving several names picks
    the certificate of the one configured, and verification checks that name.
    """

    server_name: str | None = None

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        suppress_ragged_eofs: bool = True,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(
            sock,
            server_side,
            do_handshake_on_connect,
            suppress_ragged_eofs,
            self.server_name or server_hostname,
            session,
        )

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, self.server_name or server_hostname, session
        )


# Bounded: a context per server name and CA set; a config has a handful of each.
@functools.lru_cache(maxsize=256)
def client_tls(
    server_name: str | None = None, *, verify: bool = False, ca_certs: str | None = None
) -> ssl.SSLContext:
    """A client context sending ``server_name`` (SNI) and, with ``verify``, checking the peer.

    Verification checks the chain against ``ca_certs`` (PEM text) or else the system's CA
    store, and the certificate's names against ``server_name`` when there is one: without
    one the real is known only by its address, and only the chain is checked.
    """
    if not verify and server_name is None:
        return tls_context()
    ctx = _NamedContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.server_name = server_name
    if verify:
        ctx.check_hostname = server_name is not None
        ctx.verify_mode = ssl.CERT_REQUIRED
        if ca_certs is None:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        else:
            ctx.load_verify_locations(cadata=ca_certs)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


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


async def open_stream(
    target: Target, *, tls: bool = False, limit: int = MAX_READ
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream pair to ``target`` (TLS from the first byte when asked); the caller closes it.

    ``limit`` bounds what one ``readline``/``readuntil`` may buffer, and the reader stops
    reading from the socket while twice that much is buffered: a flood costs no memory.
    """
    # asyncio makes the socket here, so that exactly one owner closes it on every path: handing
    # it a socket of ours would leave two owners when a TLS handshake is cancelled. An address
    # literal is never resolved, so no resolver thread is involved.
    return await asyncio.open_connection(
        str(target.address),
        target.port,
        family=family(target),
        ssl=tls_context() if tls else None,
        server_hostname="" if tls else None,
        limit=limit,
    )


@contextlib.asynccontextmanager
async def tcp_stream(
    target: Target, *, tls: bool = False, limit: int = MAX_READ
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """:func:`open_stream`, closed on leaving the block whatever happened inside it."""
    reader, writer = await open_stream(target, tls=tls, limit=limit)
    try:
        yield reader, writer
    finally:
        # abort() rather than close(): no lingering TLS close_notify or unsent data to wait for.
        abort(writer.transport)


def abort(transport: asyncio.WriteTransport) -> None:
    """Drop a connection now. Python before 3.11.3 (Debian 12 has 3.11.2) raises AttributeError
    when a TLS transport that was already closed twice is aborted; later ones do nothing."""
    with contextlib.suppress(AttributeError):
        transport.abort()


class Readable(Protocol):
    """A stream read in chunks: asyncio's and aiohttp's readers both are."""

    async def read(self, n: int = -1, /) -> bytes: ...


async def read_bounded(reader: Readable, limit: int) -> bytes:
    """Up to ``limit`` bytes, read until end of file or the bound, whichever comes first."""
    data = bytearray()
    while len(data) < limit and (chunk := await reader.read(limit - len(data))):
        data += chunk
    return bytes(data)


# --- datagrams ----------------------------------------------------------------------------------

#: Datagrams kept waiting for a check; a flood beyond this is dropped, not buffered.
MAX_DATAGRAMS = 64


class Datagrams(asyncio.DatagramProtocol):
    """Datagrams, and errors such as ICMP port unreachable, in arrival order; bounded."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue(MAX_DATAGRAMS)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._put(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):  # ICMP port unreachable arrives here as ECONNREFUSED
            self._put(exc)

    def _put(self, item: bytes | OSError) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(item)


async def udp_endpoint(target: Target) -> tuple[asyncio.DatagramTransport, Datagrams]:
    """A UDP socket connected to ``target``; the caller aborts the transport."""
    return await asyncio.get_running_loop().create_datagram_endpoint(
        Datagrams, remote_addr=(str(target.address), target.port), family=family(target)
    )
