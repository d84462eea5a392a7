"""Monitorfile edge: one line per check result, in ldirectord's format.

The engine hands each real's result to ``Monitors.write`` (one file per virtual with
``monitorfile=``, every virtual sharing the real writes its own); ``MonitorFile`` appends the
line, opening and closing the file per line like the log file, so logrotate needs no signal.
Only a regular file is written, never through a symbolic link, and nothing waits: a FIFO or a
device is refused (``ldirector.state.appendfile``), so the event loop never blocks on it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

from ldirector.config.model import CheckType, Real, Virtual
from ldirector.core.wording import LOGGER_NAME, localtime
from ldirector.state.appendfile import append

log = logging.getLogger(LOGGER_NAME)

# The characters that would break the line or its field separators.
_ESCAPED = {"%": "%25", "|": "%7C", "\r": "%0D", "\n": "%0A"}
_ESCAPE_RE = re.compile("[%|\r\n]")
_COLON_RUNS = re.compile(":+")

NO_MESSAGE = "-"


def escape(message: str) -> str:
    """``%``, ``|``, CR and LF as ``%xx`` so one result is always one line."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPED[m.group(0)], message)


def display_id(real_id: str) -> str:
    """ldirectord's real id as written: each run of ``:`` becomes one space, ``\\`` is dropped."""
    return _COLON_RUNS.sub(" ", real_id.replace("\\", ""))


def format_line(when: float, pid: int, real_id: str, up: bool, message: str) -> str:
    """``[<localtime>] [<pid>] <real id> [up|down] <message>`` (no trailing newline)."""
    state = "up" if up else "down"
    text = escape(message) if message else NO_MESSAGE
    return f"[{localtime(when)}] [{pid}] {display_id(real_id)} [{state}] {text}"


class MonitorFile:
    """Appends result lines to one virtual's monitorfile; a failed write raises ``OSError``
    (``RefusedFile`` when the path is not a regular file)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, real_id: str, up: bool, message: str, *, when: float | None = None) -> None:
        line = format_line(time.time() if when is None else when, os.getpid(), real_id, up, message)
        append(self.path, (line + "\n").encode("utf-8", errors="replace"))


_NON_WORD = re.compile(r"([^A-Za-z0-9_])")


def quotemeta(text: str) -> str:
    """Perl's ``quotemeta``: a backslash before every character that is not a word character."""
    return _NON_WORD.sub(r"\\\1", text)


def real_id(virtual: Virtual, real: Real) -> str:
    """ldirectord's real id, which its monitorfile lines carry.

    ``<checktype>[:<service>|:<checkcommand>]:<protocol>:<rip>:<rport>:<virtualhost>:``
    ``<checkport>:<weight>:<forward>:<request>:<receive>``, request and receive quotemeta'd.
    """
    check = str(virtual.checktype)
    if virtual.checktype in (CheckType.NEGOTIATE, CheckType.COMBINED):
        check += f":{virtual.service}"
    elif virtual.checktype in (CheckType.EXTERNAL, CheckType.EXTERNAL_PERL):
        check += f":{virtual.checkcommand}"
    request = virtual.request if real.request is None else real.request
    receive = virtual.receive if real.receive is None else real.receive
    address = f"[{real.address}]" if real.address.version == 6 else str(real.address)
    fields = (
        check,
        str(virtual.protocol),
        address,
        str(real.port),
        virtual.virtualhost or "",
        "" if virtual.checkport is None else str(virtual.checkport),
        str(real.weight),
        real.forward.word,
        quotemeta(request),
        quotemeta(receive),
    )
    return ":".join(fields)


class Monitors:
    """Every virtual's monitorfile, as the engine writes them: one line per check result.

    A file that cannot be written is reported once, then again only when the error changes;
    the line written after it says so. A full disk does not double the log's traffic.
    """

    def __init__(self) -> None:
        self._files: dict[str, MonitorFile] = {}
        #: The error each failing file last gave.
        self._failing: dict[str, str] = {}

    def write(self, virtual: Virtual, real: Real, up: bool, message: str) -> None:
        path = virtual.monitorfile
        if not path:
            return
        writer = self._files.get(path)
        if writer is None:
            writer = self._files[path] = MonitorFile(Path(path))
        try:
            writer.write(real_id(virtual, real), up, message)
        except OSError as exc:
            error = exc.strerror or str(exc)
            if self._failing.get(path) != error:
                self._failing[path] = error
                log.error("cannot write monitorfile %s: %s", path, error)
            return
        if self._failing.pop(path, None) is not None:
            log.info("monitorfile %s is written again", path)
