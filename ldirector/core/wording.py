"""ldirectord's wording: the log lines and subjects that operators' watchers match, and redaction.

Pure text: every line ldirector writes about a change of the table or of its own life is built
here, so the daemon's logs, the monitorfile and alerts all say the same thing.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable

from ldirector import __version__

#: The root of ldirector's loggers; handlers are attached here.
LOGGER_NAME = "ldirector"
VERSION_LINE = f"Linux Director v{__version__}-ldirector"
#: The result ldirectord records for a real its maintenancedir takes down.
IN_MAINTENANCE = "Server in maintenance"


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


def localtime(seconds: float) -> str:
    """Perl's scalar ``localtime``: ``Fri Nov 27 05:28:36 2026`` (day padded with a space)."""
    return time.asctime(time.localtime(seconds))


def seconds_text(seconds: float) -> str:
    """``3s``, ``0.5s``: seconds as an operator wrote them in the config."""
    return f"{seconds:g}s"
