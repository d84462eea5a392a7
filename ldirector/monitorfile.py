"""Monitorfile edge: one line per check result, in ldirectord's format (reference 5.9).

The scheduler hands each result's plain values to ``format_line``; ``MonitorFile`` appends it,
opening and closing the file per line like the log file, so logrotate needs no signal.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from ldirector.logs import localtime

# The characters that would break the line or its field separators.
_ESCAPED = {"%": "%25", "|": "%7C", "\r": "%0D", "\n": "%0A"}
_ESCAPE_RE = re.compile("[%|\r\n]")
_COLON_RUNS = re.compile(":+")

IN_MAINTENANCE = "Server in maintenance"
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
    """Appends result lines to one virtual's monitorfile; a failed write raises ``OSError``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, real_id: str, up: bool, message: str, *, when: float | None = None) -> None:
        line = format_line(time.time() if when is None else when, os.getpid(), real_id, up, message)
        with self.path.open("a", encoding="utf-8", errors="replace") as stream:
            stream.write(line + "\n")
