"""One HTTP/1.1 request and its answer, on an asyncio Protocol: what a health check needs.

A check is one request on a fresh connection (``Connection: close``, as ldirectord sends), a
status line, bounded headers and at most ``max_body`` bytes of body. aiohttp's client is built
for long-lived sessions (pools, cookies, tracing, timers) and that machinery cost most of a
check's CPU time; here the bytes go straight from the transport into httptools' parser (the C
parser uvicorn uses: llhttp, or http-parser in Debian 12's httptools 0.1), which does the
framing (Content-Length, chunked, close-delimited) and refuses malformed answers. The caller
owns the deadline: cancelling ``exchange`` aborts the connection.

The request is written here rather than by a library: it is one request line and a few
headers, and a parser-only library leaves it to its user. What goes into it comes from the
operator's configuration (path, virtualhost), so every part is checked against HTTP's grammar
and a request that would smuggle a CR, LF or other control character is refused, never sent.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httptools

from checks._io import printable

#: Largest status line plus headers accepted: a health answer, not a header flood.
MAX_HEAD = 64 * 1024
_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
#: zlib's window bits that accept both a gzip and a zlib header.
_AUTO_HEADER = 32 + zlib.MAX_WBITS
#: Statuses whose answer has no body whatever its headers say (RFC 9110, 6.4.1); http-parser
#: (httptools 0.1) would wait for a 304's announced Content-Length.
_NO_BODY = frozenset({204, 304})
#: A 101 answer: the check asks for no upgrade, and one would leave HTTP.
_SWITCH = "invalid HTTP answer: a protocol switch not asked for"

# RFC 9110's grammar for what is sent: a method and a header name are tokens, the target is
# visible ASCII (yarl has percent-encoded the rest), and a header value is visible characters
# with single inner spaces or tabs. Anything else (CR, LF, NUL, other controls) is refused.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VALUE = re.compile(rb"(?:[\x21-\x7e](?:[ \t]*[\x21-\x7e])*)?")


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x we can read; the message is the reason to show."""


class ServerClosed(Exception):
    """The connection ended before a complete status line and headers arrived."""


class InvalidRequest(ValueError):
    """The request cannot be sent as configured; the message is the reason to show."""


@dataclass(frozen=True, slots=True)
class Request:
    """A request head without body, ready for the wire: made by ``build_request()``."""

    method: str
    wire: bytes


def build_request(method: str, target: str, headers: Iterable[tuple[str, str]]) -> Request:
    """The request ``method target HTTP/1.1`` with ``headers``, each part checked against
    HTTP's grammar: raises ``InvalidRequest`` rather than send what would break the framing."""
    line = (_checked(_TOKEN, method, "method"), _checked(_TARGET, target, "request target"))
    lines = [b"%s %s HTTP/1.1" % line]
    for name, value in headers:
        field = _checked(_TOKEN, name, "header name")
        lines.append(b"%s: %s" % (field, _checked(_VALUE, value, f"{name} header")))
    lines.append(b"\r\n")
    return Request(method, b"\r\n".join(lines))


def _checked(grammar: re.Pattern[bytes], text: str, what: str) -> bytes:
    raw = text.encode("ascii", "replace")  # a non-ASCII character becomes "?", never sent
    if grammar.fullmatch(raw) is None or not text.isascii():
        raise InvalidRequest(f"invalid {what} '{printable(text, 80)}': not sent")
    return raw


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


def _parser(callbacks: object) -> httptools.HttpResponseParser:
    parser = httptools.HttpResponseParser(callbacks)
    # llhttp (httptools 0.2 on) is stricter than http-parser and h11 with bare-LF line ends and
    # folded or control-laden header values; a health check reads one answer and forwards
    # nothing, so what other clients read is read here too where httptools can be told so
    # (0.6.3 on).
    if hasattr(parser, "set_dangerous_leniencies"):
        parser.set_dangerous_leniencies(lenient_headers=True, lenient_optional_cr_before_lf=True)
    return parser


class Reader(asyncio.Protocol):
    """One answer read by httptools: the parser's callbacks (``on_*``, looked up by name) and
    ``settle``, called once with the ``Answer`` or the exception that ends the exchange.

    Fed either as an asyncio Protocol (``exchange``, for TLS) or by a probe's own socket
    callbacks (``checks.http``), which call ``data_received``, ``eof_received`` and
    ``connection_lost`` as a transport would.
    """

    def __init__(
        self, request: Request, max_body: int | None, settle: Callable[[Answer | Exception], None]
    ) -> None:
        self._request = request.wire
        # A HEAD is answered without body, whatever the headers announce.
        self._max_body = None if request.method == "HEAD" else max_body
        self._parser = _parser(self)
        self._seen = 0  # bytes read while no final head is complete: at most MAX_HEAD
        self._head = False  # the final (not 1xx) status line and headers are in
        self._status = 0
        self._reason = b""
        self._headers: dict[bytes, bytes] = {}
        self._body = bytearray()
        self._inflate: zlib._Decompress | None = None
        self._settle = settle
        self.over = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self._request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.over:
            return
        if not self._head and len(data) > MAX_HEAD - self._seen:
            data = self._past_head(data)
        elif not self._head:
            self._seen += len(data)
        if data and not self.over:
            self._feed(data)

    def _past_head(self, data: bytes) -> bytes:
        """Feeds what the head may still take: the rest, if the head ended within the limit."""
        room = MAX_HEAD - self._seen
        self._seen = MAX_HEAD
        if room:
            self._feed(data[:room])
        if self._head or self.over:
            return data[room:]
        limit = f"status line and headers past {MAX_HEAD // 1024} KiB"
        self._fail(ProtocolError(f"invalid HTTP answer: {limit}"))
        return b""

    def eof_received(self) -> bool:
        if not self.over:
            # Ends a body that runs until the close, or one the server cut short: either is
            # judged on what arrived, as a browser would show it.
            if self._head:
                self._finish()
            else:
                self._fail(ServerClosed())
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.over:
            return
        if self._head:
            self._finish()
        else:
            self._fail(exc if isinstance(exc, OSError) else ServerClosed())

    def _feed(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if not self.over:
                self._fail(ProtocolError(_SWITCH))
        except httptools.HttpParserCallbackError as exc:
            if not self.over:  # a bug of ours, not the server's: raised to the caller
                self._fail(exc.__context__ if isinstance(exc.__context__, Exception) else exc)
        except httptools.HttpParserError as exc:
            if self.over:
                return  # bytes after the answer this check needed
            if self._head:
                self._finish()  # a broken body framing after a readable head: judge what came
            else:
                self._fail(ProtocolError(f"invalid HTTP answer: {printable(str(exc))}"))

    # --- httptools' callbacks ------------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self._reason += reason  # the reason phrase, in as many pieces as the reads cut it into

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head:
            return  # a chunked body's trailers: not read, and they would grow past MAX_HEAD
        # Names compared in lower case; the first of a repeated header decides.
        self._headers.setdefault(name.lower(), value.strip(b" \t"))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status == 101:  # parsers differ on whether it switches without "Connection: upgrade"
            self._fail(ProtocolError(_SWITCH))
            return
        if status < 200:
            # 100 Continue and the like: the final answer follows on the same connection.
            self._reason, self._headers = b"", {}
            return
        self._head, self._status = True, status
        if not self._max_body or status in _NO_BODY:
            self._finish()
            return
        encoding = self._headers.get(b"content-encoding", b"").lower()
        if encoding in (b"gzip", b"x-gzip", b"deflate"):
            self._inflate = zlib.decompressobj(_AUTO_HEADER)

    def on_body(self, chunk: bytes) -> None:
        if self.over or not self._head or not self._max_body:
            return
        limit = self._max_body
        if self._inflate is not None:
            try:
                # Bounded inflation: a small compressed body must not become gigabytes here.
                chunk = self._inflate.decompress(chunk, limit - len(self._body) + 1)
            except zlib.error:
                self._fail(ProtocolError("invalid HTTP answer: body cannot be decoded"))
                return
        self._body += chunk[: limit - len(self._body)]
        if len(self._body) >= limit:
            self._finish()

    def on_message_complete(self) -> None:
        if self._head and not self.over:
            self._finish()

    # --------------------------------------------------------------------------------------------

    def _fail(self, exc: Exception) -> None:
        self.over = True
        self._settle(exc)

    def _finish(self) -> None:
        self.over = True
        body = bytes(self._body) if self._max_body else None
        reason = self._reason.decode("latin-1").strip()
        self._settle(Answer(self._status, reason, self._headers, body))


async def exchange(
    host: str,
    port: int,
    request: Request,
    *,
    tls: ssl.SSLContext | None = None,
    max_body: int | None = None,
) -> Answer:
    """Send ``request`` (a head without body) to ``host``:``port`` and read the answer: the
    head, and the body up to ``max_body`` bytes when it is given. Raises OSError (connect,
    TLS), ``ProtocolError`` and ``ServerClosed``; the connection is closed in every case,
    cancellation included."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Answer] = loop.create_future()

    def settle(outcome: Answer | Exception) -> None:
        if done.done():  # cancelled: the abort below still ends the connection
            return
        if isinstance(outcome, Exception):
            done.set_exception(outcome)
            # Marked as seen: a caller cancelled while connecting never awaits this future,
            # and the loop would otherwise log "exception was never retrieved" for each.
            done.exception()
        else:
            done.set_result(outcome)

    transport, _ = await loop.create_connection(
        lambda: Reader(request, max_body, settle), host, port, ssl=tls
    )
    try:
        return await done
    finally:
        # abort: no lingering close handshake (or TLS close_notify) for a check that is done.
        transport.abort()
