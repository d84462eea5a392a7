"""Log edge: where ldirector's log lines go and what they say, in ldirectord's formats.

The wording itself is ``ldirector.core.wording``; ``configure()`` routes every line to stderr
(``-d``), stdout (``supervised=yes``), a file (``logfile="/path"``) or syslog
(``logfile="local0"``), with a redacting filter in front of every destination so no password
or secret is ever written. Syslog and the journal get each line at the priority of its level;
a stderr or stdout that systemd connected to the journal gets journal entries with fields
(``ldirector.daemon.journal``).
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ldirector.core.events import LOG_FIELDS
from ldirector.core.text import redact
from ldirector.core.wording import LOGGER_NAME, localtime
from ldirector.daemon.journal import JOURNAL_SOCKET, JournalHandler, stream_is_journal
from ldirector.state.appendfile import RefusedFile, append

SYSLOG_IDENT = "ldirectord"
DEFAULT_LOGFILE = "/var/log/ldirectord.log"


class SecretFilter(logging.Filter):
    """Redacts every record in place before any handler formats it.

    The secret set is mutable so a reload can add the new config's passwords.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: frozenset[str] = frozenset(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        record.exc_info = None
        extra = getattr(record, LOG_FIELDS, None)
        if isinstance(extra, Mapping):  # journal fields are written too
            masked = {k: redact(str(v), self.secrets) for k, v in extra.items() if v is not None}
            setattr(record, LOG_FIELDS, masked)
        return True


# --- destinations ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stderr:
    """``-d``: foreground, plain lines on stderr."""


@dataclass(frozen=True, slots=True)
class Stdout:
    """``supervised=yes``: foreground, ``[<localtime>] msg`` on stdout."""


@dataclass(frozen=True, slots=True)
class LogFile:
    path: Path


@dataclass(frozen=True, slots=True)
class Syslog:
    facility: str


Destination = Stderr | Stdout | LogFile | Syslog


def destination_for(logfile: str | None, *, debug: bool, supervised: bool) -> Destination:
    """ldirectord's precedence: ``-d`` beats supervised, which beats ``logfile``."""
    if debug:
        return Stderr()
    if supervised:
        return Stdout()
    value = logfile or DEFAULT_LOGFILE
    if value.startswith("/"):
        return LogFile(Path(value))
    from ldirector.daemon.syslog import FACILITIES

    facility = value.lower()
    if facility not in FACILITIES:
        raise ValueError(f"unknown syslog facility '{value}' in logfile=")
    return Syslog(facility)


class _LocaltimeFormatter(logging.Formatter):
    def __init__(self, cfgname: str | None) -> None:
        super().__init__()
        self.cfgname = cfgname

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_text:
            text += "\n" + record.exc_text
        stamp = localtime(record.created)
        if self.cfgname is None:
            return f"[{stamp}] {text}"
        return f"[{stamp}|{self.cfgname}|{record.process}] {text}"


class _PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno <= logging.DEBUG:
            text = f"DEBUG: {text}"
        if record.exc_text:
            text += "\n" + record.exc_text
        return text


class ReopeningFileHandler(logging.Handler):
    """Appends each line with a fresh open/close, as ldirectord does.

    That makes the file safe under logrotate (``create`` or ``copytruncate``) with no signal,
    and a daemon never holds a deleted file open. If the write fails the line goes to stderr.
    Only a regular file is written, never through a symbolic link, and opening it never waits:
    a FIFO would hang ``start`` at its first line. Such a path is refused, said once on stderr
    (again only if what it is changes), and the lines go to stderr.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._refused: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            append(self.path, line.encode("utf-8", errors="replace"))
        except RefusedFile as exc:
            if exc.strerror != self._refused:
                self._refused = exc.strerror
                sys.stderr.write(f"logfile {self.path}: {exc.strerror}: logging to stderr\n")
            sys.stderr.write(self.format(record) + "\n")
        except OSError:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)
        else:
            self._refused = None


def build_handler(
    destination: Destination,
    cfgname: str,
    *,
    syslog_address: str = "/dev/log",
    journal_socket: str = JOURNAL_SOCKET,
) -> logging.Handler:
    """One handler per destination, formatted the ldirectord way.

    A stderr (``-d``) or stdout (``supervised=yes``) that is the journal gets journal entries:
    the message text alone (the journal keeps the time and the level), with fields; so does a
    syslog facility when stderr is the journal (a systemd service), with the facility kept.
    """
    handler: logging.Handler
    match destination:
        case Stderr() if stream_is_journal(2):
            handler = JournalHandler(SYSLOG_IDENT, sys.stderr, socket_path=journal_socket)
        case Stdout() if stream_is_journal(1):
            handler = JournalHandler(SYSLOG_IDENT, sys.stdout, socket_path=journal_socket)
        case Stderr():
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(_PlainFormatter())
        case Stdout():
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(_LocaltimeFormatter(None))
        case LogFile(path):
            handler = ReopeningFileHandler(path)
            handler.setFormatter(_LocaltimeFormatter(cfgname))
        case Syslog(facility) if stream_is_journal(2):
            # Under systemd, whose journal is the syslog of the host: the entry goes there
            # natively, with its facility and ldirector's fields (journald forwards it on to a
            # syslog daemon with that facility, where one is configured to receive it).
            from ldirector.daemon.syslog import FACILITIES

            handler = JournalHandler(
                SYSLOG_IDENT, sys.stderr, socket_path=journal_socket, facility=FACILITIES[facility]
            )
        case Syslog(facility):
            from ldirector.daemon.syslog import FACILITIES, SyslogHandler

            handler = SyslogHandler(
                address=syslog_address, facility=FACILITIES[facility], socktype=socket.SOCK_DGRAM
            )
            # RFC 3164 tag with the pid, like openlog("ldirectord", LOG_PID).
            handler.setFormatter(logging.Formatter(f"{SYSLOG_IDENT}[%(process)d]: %(message)s"))
    return handler


def configure(
    destination: Destination,
    cfgname: str,
    *,
    secrets: Iterable[str] = (),
    debug: bool = False,
    syslog_address: str = "/dev/log",
    journal_socket: str = JOURNAL_SOCKET,
) -> SecretFilter:
    """Route the ``ldirector`` logger to one destination; returns its redacting filter."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    handler = build_handler(
        destination, cfgname, syslog_address=syslog_address, journal_socket=journal_socket
    )
    secret_filter = SecretFilter(secrets)
    handler.addFilter(secret_filter)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    return secret_filter
