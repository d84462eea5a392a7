"""journald edge: log records as journal entries, over journald's native datagram protocol.

``logs`` uses it when the daemon's stderr (or stdout) is the journal. Each record is one
datagram of ``KEY=value`` fields: the priority, the identifier, ldirectord's message text
unchanged, and the ``LDIRECTOR_*`` fields the engine attached (``extra=``). The protocol is a
few lines of socket code, written here rather than taken from python3-systemd, a C extension
that a pip install could only build with a compiler and libsystemd's headers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import struct
from collections.abc import Iterable, Mapping
from typing import TextIO

from ldirector.core.events import LOG_FIELDS

#: journald's native socket (systemd.journal-fields(7), "Native Protocol").
JOURNAL_SOCKET = "/run/systemd/journal/socket"

#: A datagram stays far below the socket's send buffer (about 208 KiB by default), so the
#: kernel takes it whole; a longer message is a runaway (a check's output), cut rather than lost.
MAX_MESSAGE = 48 * 1024
#: The ``LDIRECTOR_*`` values name a server or a check: a line long at most.
MAX_FIELD = 512

TRUNCATED = " [truncated]"

# journald accepts uppercase ASCII, digits and underscores, not starting with either of the
# last two (a leading underscore is a trusted field only journald may set).
_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def priority(levelno: int) -> int:
    """The syslog priority for a Python level: err for errors, warning for warnings, etc."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def stream_is_journal(fd: int, environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``fd`` is the journal stream systemd connected (``JOURNAL_STREAM=dev:inode``).

    Comparing with the fd itself, as systemd.exec(5) documents, tells a redirected stream
    (``-d 2>file`` in a unit's shell) from the one systemd set up.
    """
    env = os.environ if environ is None else environ
    device, sep, inode = env.get("JOURNAL_STREAM", "").partition(":")
    if not sep:
        return False
    try:
        found = os.fstat(fd)
        return found.st_dev == int(device) and found.st_ino == int(inode)
    except (OSError, ValueError):
        return False


def bounded(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes (marker included) on a character edge."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    keep = data[: limit - len(TRUNCATED)].decode("utf-8", errors="ignore")
    return keep + TRUNCATED


def single_line(text: str, limit: int = MAX_FIELD) -> str:
    """A field value: control characters (newlines included) become one space, then bounded."""
    return bounded(_CONTROL.sub(" ", text), limit)


def encode(fields: Iterable[tuple[str, str]]) -> bytes:
    """The datagram: ``KEY=value\\n``, or for a value with a newline the binary form
    ``KEY\\n``, its length as 64-bit little endian, the value, ``\\n``."""
    parts: list[bytes] = []
    for key, value in fields:
        name, data = key.encode("ascii"), value.encode("utf-8", errors="replace")
        if b"\n" in data:
            parts.append(name + b"\n" + struct.pack("<Q", len(data)) + data + b"\n")
        else:
            parts.append(name + b"=" + data + b"\n")
    return b"".join(parts)


def record_fields(record: logging.LogRecord) -> list[tuple[str, str]]:
    """The ``LDIRECTOR_*`` fields a logging call attached (``extra={LOG_FIELDS: {...}}``, short
    lowercase names such as ``event`` or ``real``): well-formed names only, values single-line."""
    extra = getattr(record, LOG_FIELDS, None)
    if not isinstance(extra, Mapping):
        return []
    fields = []
    for key, value in extra.items():
        name = f"LDIRECTOR_{str(key).upper()}"
        if value is not None and _FIELD_NAME.fullmatch(name):
            fields.append((name, single_line(str(value))))
    return fields


class JournalHandler(logging.Handler):
    """Sends each record to journald as one datagram, never waiting for it.

    The socket is non-blocking and unconnected: a journald that is busy (``EAGAIN``), gone or
    restarting (``ENOENT``, ``ECONNREFUSED``) or refuses the size (``EMSGSIZE``) costs that one
    record its fields, not the line: it goes to ``fallback`` (the journal stream itself) with
    the ``<N>`` prefix that systemd's ``SyslogLevelPrefix=`` turns back into its priority. The
    next record tries the socket again.
    """

    def __init__(
        self,
        identifier: str,
        fallback: TextIO,
        *,
        socket_path: str = JOURNAL_SOCKET,
        facility: int | None = None,
    ) -> None:
        super().__init__()
        self.identifier = identifier
        #: The syslog facility (``logfile=local0``) the entry keeps for journald's forwarding.
        self.facility = facility
        self.fallback = fallback
        self.socket_path = socket_path
        self._socket: socket.socket | None = None
        with contextlib.suppress(OSError):  # no socket at all: every line takes the fallback
            self._socket = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )

    def fields(self, record: logging.LogRecord, message: str) -> list[tuple[str, str]]:
        """The entry's fields, journald's well-known ones first."""
        return [
            ("MESSAGE", message),
            ("PRIORITY", str(priority(record.levelno))),
            ("SYSLOG_IDENTIFIER", self.identifier),
            *([("SYSLOG_FACILITY", str(self.facility))] if self.facility is not None else []),
            ("CODE_FILE", single_line(record.pathname)),
            ("CODE_LINE", str(record.lineno)),
            ("CODE_FUNC", single_line(record.funcName)),
            *record_fields(record),
        ]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = bounded(self.format(record), MAX_MESSAGE)
            datagram = encode(self.fields(record, message))
        except Exception:
            self.handleError(record)
            return
        if self._socket is not None:
            try:
                self._socket.sendto(datagram, self.socket_path)
            except OSError:
                pass  # every errno alike: the line still has a way out, just below
            else:
                return
        self._write_fallback(priority(record.levelno), message)

    def _write_fallback(self, level: int, message: str) -> None:
        # Each line carries the prefix: journald reads a stream line by line, so a traceback's
        # later lines would otherwise drop to the default priority.
        text = "".join(f"<{level}>{line}\n" for line in message.split("\n"))
        with contextlib.suppress(Exception):  # nowhere left to say it; the daemon goes on
            self.fallback.write(text)
            self.fallback.flush()

    def close(self) -> None:
        try:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
        finally:
            super().close()
