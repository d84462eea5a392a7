"""Log edge: where ldirector's log lines go and what they say, in ldirectord's formats.

The engine reports state changes through the pure ``*_message`` functions below, so existing
log watchers keep matching; ``configure()`` then routes every line to stderr (``-d``), stdout
(``supervised=yes``), a file (``logfile="/path"``) or syslog (``logfile="local0"``), with a
redacting filter in front of every destination so no password or secret is ever written.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import logging.handlers
import re
import socket
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ldirector import __version__

LOGGER_NAME = "ldirector"
SYSLOG_IDENT = "ldirectord"
DEFAULT_LOGFILE = "/var/log/ldirectord.log"
VERSION_LINE = f"Linux Director v{__version__}-ldirector"


# --- state-change wording (pure) -------------------------------------------------------------


def hostport(host: str | ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> str:
    """``ip:port``, with IPv6 literals bracketed as ldirectord writes them."""
    text = str(host)
    if ":" in text and not text.startswith("["):
        text = f"[{text}]"
    return f"{text}:{port}"


def added_real_message(real: str, virtual: str, weight: int) -> str:
    return f"Added real server: {real} ({virtual}) (Weight set to {weight})"


def restored_real_message(real: str, virtual: str, weight: int) -> str:
    return f"Restored real server: {real} ({virtual}) (Weight set to {weight})"


def deleted_real_message(real: str, virtual: str) -> str:
    return f"Deleted real server: {real} ({virtual})"


def quiescent_real_message(real: str, virtual: str) -> str:
    return f"Quiescent real server: {real} ({virtual}) (Weight set to 0)"


def readd_quiescent_message(real: str, virtual: str) -> str:
    return f"Readd Quiescent real server: {real} ({virtual}) (Weight set to 0)"


def soft_failure_message(real: str, virtual_id: str, failures: int, failurecount: int) -> str:
    """``virtual_id`` is ldirectord's virtual id string, e.g. ``tcp:192.0.2.1:80``."""
    return f"Soft failure real server: {real} ({virtual_id}) failure {failures}/{failurecount}"


def reset_soft_failure_message(real: str, virtual_id: str) -> str:
    return f"Resetting soft failure count: {real} ({virtual_id})"


def added_fallback_message(fallback: str, virtual: str, weight: int = 1) -> str:
    return f"Added fallback server: {fallback} ({virtual}) (Weight set to {weight})"


def deleted_fallback_message(fallback: str, virtual: str) -> str:
    return f"Deleted fallback server: {fallback} ({virtual})"


def purged_real_message(real: str, virtual: str, phase: str) -> str:
    """``phase`` is ``start`` (untracked real found at start/reload) or ``stop`` (cleanstop)."""
    return f"Purged real server ({phase}): {real} ({virtual})"


def added_virtual_message(virtual: str) -> str:
    return f"Added virtual server: {virtual}"


def changed_virtual_message(virtual: str) -> str:
    return f"Changed virtual server: {virtual}"


def purged_virtual_message(virtual: str, phase: str) -> str:
    return f"Purged virtual server ({phase}): {virtual}"


def inaccessible_real_message(real: str, virtual: str) -> str:
    """The subject of emailalertfreq reminders while a real stays down."""
    return f"Inaccessible real server: {real} ({virtual})"


def invoked_message(argv: Iterable[str]) -> str:
    # ldirectord ends this line with a space; watchers that anchor on it still match.
    return "Invoking ldirectord invoked as: " + " ".join(argv) + " "


def starting_message(pid: int | None) -> str:
    """Daemonized: no pid in the line; foreground (``-d``/supervised): ``with pid: N``."""
    if pid is None:
        return f"Starting {VERSION_LINE} as daemon"
    return f"Starting {VERSION_LINE} with pid: {pid}"


def terminated_message(signal_name: str) -> str:
    return f"Linux Director Daemon terminated on signal: {signal_name}"


def reloading_message() -> str:
    return "Reloading Linux Director Daemon config on signal"


def config_error_exit_message() -> str:
    return "Exiting with exit_status 2: config_error: Configuration Error"


def stopped_message(config: str) -> str:
    return f"ldirectord is stopped for {config}"


def config_changed_message(path: str, reread: bool) -> tuple[str, str]:
    """The two lines autoreload polling writes when the file's content changed."""
    action = " - reread new configuration" if reread else " - ignore new configuration"
    return f"Configuration file '{path}' has changed on disk", action


def emailalert_message(subject: str) -> str:
    return f"emailalert: {subject}"


# --- secrets ---------------------------------------------------------------------------------

# key=value / key: value forms of credentials, caught even when the value is not known up front
# (e.g. a library echoing a DSN). Known values (passwd=, secret= from the config) are redacted
# exactly as well, wherever they appear.
_SECRET_KV = re.compile(
    r"(?i)\b(passwd|password|pass|secret|pwd|auth)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*:)([^@\s/]+)(@)")
MASK = "********"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and credential-looking fragments with a mask."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _SECRET_KV.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    return _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + m.group(3), text)


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
    facility = value.lower()
    if facility not in logging.handlers.SysLogHandler.facility_names:
        raise ValueError(f"unknown syslog facility '{value}' in logfile=")
    return Syslog(facility)


def localtime(seconds: float) -> str:
    """Perl's scalar ``localtime``: ``Fri Nov 27 05:28:36 2026`` (day padded with a space)."""
    return time.asctime(time.localtime(seconds))


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
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            with self.path.open("a", encoding="utf-8", errors="replace") as stream:
                stream.write(line)
        except OSError:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _SyslogHandler(logging.handlers.SysLogHandler):
    def mapPriority(self, levelName: str) -> str:
        # ldirectord logs every line at info, whatever its Python level.
        return "info"

    def handleError(self, record: logging.LogRecord) -> None:
        # No syslog daemon (yet): keep the line, on stderr, without a logging traceback. The
        # stdlib handler reconnects on the next line, so a restarted syslogd is picked up.
        with contextlib.suppress(Exception):
            sys.stderr.write(self.format(record) + "\n")


def build_handler(
    destination: Destination, cfgname: str, *, syslog_address: str = "/dev/log"
) -> logging.Handler:
    """One handler per destination, formatted the ldirectord way."""
    handler: logging.Handler
    match destination:
        case Stderr():
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(_PlainFormatter())
        case Stdout():
            handler = logging.StreamHandler(sys.stdout)
            handler.setFormatter(_LocaltimeFormatter(None))
        case LogFile(path):
            handler = ReopeningFileHandler(path)
            handler.setFormatter(_LocaltimeFormatter(cfgname))
        case Syslog(facility):
            code = logging.handlers.SysLogHandler.facility_names[facility]
            handler = _SyslogHandler(
                address=syslog_address, facility=code, socktype=socket.SOCK_DGRAM
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
) -> SecretFilter:
    """Route the ``ldirector`` logger to one destination; returns its redacting filter."""
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    handler = build_handler(destination, cfgname, syslog_address=syslog_address)
    secret_filter = SecretFilter(secrets)
    handler.addFilter(secret_filter)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)
    logger.propagate = False
    return secret_filter
