"""The syslog destination (``logfile="local0"``): the stdlib's handler, made safe for the loop.

A module of its own so that only a config that logs to syslog loads ``logging.handlers`` (and
the pickle modules it brings); the default log file, ``-d`` and ``supervised=yes`` do not.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import socket
import sys

from ldirector.daemon.journal import priority

#: The facilities ``logfile=`` may name, and their syslog codes.
FACILITIES = logging.handlers.SysLogHandler.facility_names

_SYSLOG_NAMES = {2: "crit", 3: "err", 4: "warning", 6: "info", 7: "debug"}


class SyslogHandler(logging.handlers.SysLogHandler):
    def mapPriority(self, levelName: str) -> str:
        # The level's priority, not ldirectord's info for everything: `journalctl -p warning`
        # and syslog's `*.err` rules must see the errors. The message text is unchanged.
        levelno = logging.getLevelName(levelName)
        return _SYSLOG_NAMES[priority(levelno if isinstance(levelno, int) else logging.INFO)]

    def _connect_unixsocket(self, address: str) -> None:
        # The stdlib's own (re)connect, which emit() also calls after a failed send; typeshed
        # leaves it and the socket attribute out.
        super()._connect_unixsocket(address)  # type: ignore[misc]
        # Never wait for a syslog daemon that stopped reading: the loop runs the checks. A full
        # queue fails the send (EAGAIN), and the line goes to stderr below.
        sock: socket.socket | None = getattr(self, "socket", None)
        if sock is not None:
            sock.setblocking(False)

    def handleError(self, record: logging.LogRecord) -> None:
        # No syslog daemon (yet): keep the line, on stderr, without a logging traceback. The
        # stdlib handler reconnects on the next line, so a restarted syslogd is picked up.
        with contextlib.suppress(Exception):
            sys.stderr.write(self.format(record) + "\n")
