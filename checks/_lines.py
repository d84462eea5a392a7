"""A compact asyncio client for the line-based protocols (FTP, SMTP, POP3, IMAP, NNTP).

Used by the check modules only, over :func:`checks._io.open_stream`. It reads CRLF lines with a
bound on their length and turns whatever a remote end can do wrong into
:class:`~checks._io.ProtocolError`, which :func:`checks._io.describe` words like any other
failure. The caller's ``asyncio.timeout`` bounds everything; closing never waits on the peer once
something went wrong, so a cancelled check leaves no socket behind.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from checks._io import ProtocolError, abort, open_stream, printable
from checks.types import Target

#: Longest line accepted from a server. Greetings and replies are short; a longer "line" is not
#: the protocol we expected.
MAX_LINE = 8192
#: Most continuation lines accepted in one multi-line reply.
MAX_LINES = 1000
#: Seconds saying goodbye (QUIT, then closing) may take once the check has its verdict.
CLOSE_GRACE = 1.0


class LineClient:
    """One connection speaking a CRLF line protocol: ``async with await LineClient.open(...)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, target: Target, *, tls: bool = False) -> LineClient:
        reader, writer = await open_stream(target, tls=tls, limit=MAX_LINE)
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
        abort(self.writer.transport)

    async def close(self) -> None:
        """Close politely; a peer that misbehaves or dawdles while closing is simply dropped.

        The verdict is in by then: a TLS peer that never answers close_notify must not turn it
        into a timeout, so the polite part gets ``CLOSE_GRACE`` seconds.
        """
        try:
            async with asyncio.timeout(CLOSE_GRACE):
                self.writer.close()
                await self.writer.wait_closed()
        except OSError:  # the grace running out (TimeoutError) and ssl.SSLError included
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

    async def goodbye(self, command: str) -> None:
        """Send ``command`` (QUIT, LOGOUT) and read the first line of the answer.

        The verdict is in by then: a server that hangs up or stays silent instead of answering
        (for ``CLOSE_GRACE`` seconds) is still healthy, and what it says is not examined.
        """
        with contextlib.suppress(ProtocolError, OSError, EOFError):  # TimeoutError included
            async with asyncio.timeout(CLOSE_GRACE):
                await self.send(command)
                await self.readline()

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
