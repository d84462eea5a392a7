"""One HTTP/1.1 request and its answer, on an asyncio Protocol: what a health check needs.

A check is one request on a fresh connection (``Connection: close``, as ldirectord sends), a
status line, bounded headers and at most ``max_body`` bytes of body. aiohttp's client is built
for long-lived sessions (pools, cookies, tracing, timers) and that machinery cost most of a
check's CPU time; here the bytes go straight from the transport into h11's parser, a sans-IO
HTTP/1.1 implementation that does the framing (Content-Length, chunked, close-delimited) and
refuses malformed answers. The caller owns the deadline: cancelling ``exchange`` aborts the
connection.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import zlib
from dataclasses import dataclass

import h11

from checks._io import printable

#: Largest status line plus headers accepted: a health answer, not a header flood.
MAX_HEAD = 64 * 1024
_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
#: zlib's window bits that accept both a gzip and a zlib header.
_AUTO_HEADER = 32 + zlib.MAX_WBITS


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x we can read; the message is the reason to show."""


class ServerClosed(Exception):
    """The connection ended before a complete status line and headers arrived."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: dict[bytes, bytes]
    #: The decoded body, at most the bytes asked for; None when it was not read.
    body: bytes | None

    def header(self, name: bytes) -> str:
        return self.headers.get(name, b"").decode("latin-1")

    def text(self) -> str:
        """The body as text in the charset of its Content-Type (UTF-8 by default)."""
        body = self.body or b""
        found = _CHARSET.search(self.headers.get(b"content-type", b""))
        charset = found.group(1).decode("ascii") if found else "utf-8"
        try:
            return body.decode(charset, "replace")
        except LookupError:  # a charset Python does not know
            return body.decode("utf-8", "replace")


class _Exchange(asyncio.Protocol):
    def __init__(self, request: h11.Request, max_body: int | None) -> None:
        self._max_body = max_body
        self._parser = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        # Sent through the parser, which then knows what answer to expect (none to a HEAD).
        self._request = (self._parser.send(request) or b"") + (
            self._parser.send(h11.EndOfMessage()) or b""
        )
        self._response: h11.Response | None = None
        self._body = bytearray()
        self._size = 0
        self._inflate: zlib._Decompress | None = None
        self.done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self._request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.done.done():
            return
        self._parser.receive_data(data)
        self._events()

    def eof_received(self) -> bool:
        if self.done.done():
            return False
        if self._response is None:
            self._fail(ServerClosed())
        else:
            self._parser.receive_data(b"")  # may end a body that runs until the close
            self._events()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self._response is not None and self._max_body:
            # The server closed mid-body: judge what arrived, as a browser would show it.
            self._finish(self._response)
        else:
            self._fail(exc if isinstance(exc, OSError) else ServerClosed())

    def _events(self) -> None:
        try:
            while not self.done.done():
                event = self._parser.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if isinstance(event, h11.InformationalResponse):
                    continue  # 100 Continue and the like: the final answer follows
                if isinstance(event, h11.Response):
                    self._response = event
                    encoding = dict(event.headers).get(b"content-encoding", b"").lower()
                    if encoding in (b"gzip", b"x-gzip", b"deflate"):
                        self._inflate = zlib.decompressobj(_AUTO_HEADER)
                    if not self._max_body:
                        self._finish(event)
                elif isinstance(event, h11.Data) and self._response and self._max_body:
                    self._take(self._response, bytes(event.data), self._max_body)
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed) and self._response:
                    self._finish(self._response)
        except h11.RemoteProtocolError as exc:
            if self._response is not None and self._max_body:
                # A broken body framing after a readable head: judge what came.
                self._finish(self._response)
            else:
                self._fail(ProtocolError(f"invalid HTTP answer: {printable(str(exc))}"))
        except zlib.error:
            self._fail(ProtocolError("invalid HTTP answer: body cannot be decoded"))

    def _fail(self, exc: Exception) -> None:
        self.done.set_exception(exc)
        # Marked as seen: a caller cancelled while connecting never awaits this future, and the
        # loop would otherwise log "exception was never retrieved" for every such check.
        self.done.exception()

    def _take(self, response: h11.Response, chunk: bytes, limit: int) -> None:
        if self._inflate is not None:
            # Bounded inflation: a small compressed body must not become gigabytes here.
            chunk = self._inflate.decompress(chunk, limit - self._size + 1)
        self._body += chunk[: limit - self._size]
        self._size = len(self._body)
        if self._size >= limit:
            self._finish(response)

    def _finish(self, response: h11.Response) -> None:
        headers: dict[bytes, bytes] = {}
        for name, value in response.headers:
            headers.setdefault(name, value)  # the first of a repeated header decides
        body = bytes(self._body) if self._max_body else None
        reason = response.reason.decode("latin-1")
        self.done.set_result(Answer(response.status_code, reason, headers, body))


async def exchange(
    host: str,
    port: int,
    request: h11.Request,
    *,
    tls: ssl.SSLContext | None = None,
    max_body: int | None = None,
) -> Answer:
    """Send ``request`` (a head without body) to ``host``:``port`` and read the answer: the
    head, and the body up to ``max_body`` bytes when it is given. Raises OSError (connect,
    TLS), ``ProtocolError`` and ``ServerClosed``; the connection is closed in every case,
    cancellation included."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_connection(
        lambda: _Exchange(request, max_body), host, port, ssl=tls
    )
    try:
        return await protocol.done
    finally:
        # abort: no lingering close handshake (or TLS close_notify) for a check that is done.
        transport.abort()
