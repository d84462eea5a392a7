"""A compact asyncio client for the line-based protocols (FTP, SMTP, POP3, IMAP, NNTP).

Used by the check modules only. It opens a TCP connection (optionally TLS, unverified, since real
servers are addressed by IP), reads CRLF lines with a bound on their length, and turns whatever a
remote end can do wrong into :class:`ProtocolError` or an ``OSError`` that :func:`failure` turns
into one actionable line. The caller's ``asyncio.timeout`` bounds everything; closing never waits
on the peer once something went wrong, so a cancelled check leaves no socket behind.
"""

from __future__ import annotations

import asyncio
import errno
import re
import ssl
from types import TracebackType

from checks.types import Target

#: Longest line accepted from a server. Greetings and replies are short; a longer "line" is not
#: the protocol we expected.
MAX_LINE = 8192
#: Most continuation lines accepted in one multi-line reply.
MAX_LINES = 1000


class ProtocolError(Exception):
    """The server answered, but not as the protocol says a healthy one does."""


def tls_context() -> ssl.SSLContext:
    """A client context that encrypts but does not verify: reals are addressed by IP."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def printable(text: str, limit: int = 120) -> str:
    """``text`` made safe for a one-line reason: control characters escaped, length bounded."""
    text = text.strip()
    text = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure(exc: OSError | ssl.SSLError | ProtocolError | asyncio.IncompleteReadError) -> str:
    """The one-line reason for an expected failure."""
    match exc:
        case ProtocolError():
            return str(exc)
        case asyncio.IncompleteReadError():
            return "connection closed by server"
        case ssl.SSLError():
            return f"TLS error: {exc.reason or exc.strerror or exc}"
        case ConnectionRefusedError():
            return "connection refused"
        case ConnectionResetError():
            return "connection reset by peer"
        case OSError() if exc.errno == errno.EHOSTUNREACH:
            return "no route to host"
        case OSError() if exc.errno == errno.ENETUNREACH:
            return "network unreachable"
        case OSError():
            return exc.strerror or str(exc) or type(exc).__name__
    raise AssertionError(exc)  # pragma: no cover - the match above is exhaustive


def underlying(exc: BaseException) -> str | None:
    """The reason of the OSError a driver's exception wraps, if any (drivers hide "refused")."""
    seen: BaseException | None = exc
    for _ in range(10):
        seen = seen.__cause__ or seen.__context__ if seen is not None else None
        if isinstance(seen, OSError | ssl.SSLError):
            return failure(seen)
    return None


def missing_driver(service: str, module: str) -> str:
    return f"service={service} needs the {module} driver: pip install 'ldirector[{service}]'"


class LineClient:
    """One connection speaking a CRLF line protocol: ``async with await LineClient.open(...)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, target: Target, *, tls: bool = False) -> LineClient:
        reader, writer = await asyncio.open_connection(
            str(target.address),
            target.port,
            ssl=tls_context() if tls else None,
            server_hostname="" if tls else None,
            limit=MAX_LINE,
        )
        return cls(reader, writer)

    async def __aenter__(self) -> LineClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.close()
        else:
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once, without a TLS close_notify or waiting for the peer."""
        self.writer.transport.abort()

    async def close(self) -> None:
        """Close politely; a peer that misbehaves while closing is simply dropped."""
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
        finally:
            self.abort()

    async def readline(self) -> str:
        """One line without its line ending; EOF or an over-long line is a ProtocolError."""
        try:
            raw = await self.reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise ProtocolError(
                    f"connection closed mid-line after {printable(exc.partial.decode('latin-1'))!r}"
                ) from None
            raise ProtocolError("connection closed by server") from None
        except asyncio.LimitOverrunError:
            raise ProtocolError(f"reply line longer than {MAX_LINE} bytes") from None
        # Latin-1 never fails to decode; status codes and keywords are ASCII anyway.
        return raw.decode("latin-1").rstrip("\r\n")

    async def send(self, line: str) -> None:
        if "\r" in line or "\n" in line:
            # A login or password with a line break would smuggle in a second command.
            raise ProtocolError("refusing to send a value containing a line break")
        self.writer.write(line.encode("utf-8") + b"\r\n")
        await self.writer.drain()

    async def reply(self) -> tuple[int, str]:
        """An FTP/SMTP/NNTP style reply: ``ddd text``, or ``ddd-`` continued until ``ddd text``.

        Returns the code and the text of the first line, the one that names the server or the
        problem (an EHLO reply's last line is just an extension keyword).
        """
        line = await self.readline()
        code = _code(line)
        first = line
        if line[3:4] == "-":
            # RFC 959 allows free-form continuation lines; only "ddd " with the same code ends it.
            for _ in range(MAX_LINES):
                line = await self.readline()
                if line[:3] == f"{code:03d}" and line[3:4] in (" ", ""):
                    break
            else:
                raise ProtocolError(f"multi-line reply longer than {MAX_LINES} lines")
        return code, printable(first[4:])

    async def expect(self, protocol: str, ok: range | tuple[int, ...], what: str) -> str:
        """Read a reply whose code must be in ``ok``; else a ProtocolError naming ``what``."""
        code, text = await self.reply()
        if code not in ok:
            raise ProtocolError(f"{protocol} {code} {text} ({what})".replace(" ()", ""))
        return f"{protocol} {code} {text}".rstrip()


def _code(line: str) -> int:
    if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in ("", " ", "-"):
        raise ProtocolError(f"not a status reply: {printable(line)!r}")
    return int(line[:3])
