"""The connection-sync daemons as the status surfaces show them: JSON, ``status -v``, metrics.

Pure. The engine's keeper (``ldirector.engine.syncd``) fills a :class:`SyncStatus` after every
pass; a snapshot carries it unchanged, and the renderers here turn it into the ``sync`` member
of the status document, the text block of ``status -v`` and the ``ldirector_sync_*`` metrics.
Interface names come from the kernel, so they are made inert on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ldirector.core.text import safe_text


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncDaemonStatus:
    """One role's daemon: what the config asks and what the kernel runs."""

    state: str  # master | backup
    #: Interface of the running daemon, else the configured one ("" when neither).
    interface: str = ""
    syncid: int = 0
    configured: bool = False
    running: bool = False
    #: ldirector started it (and so may stop it).
    ours: bool = False
    #: Running as the config asks (False when not configured).
    matches: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncStatus:
    """Every role's daemon and the keeper's totals since start."""

    daemons: tuple[SyncDaemonStatus, ...] = ()
    starts: int = 0
    stops: int = 0
    #: Daemons of ours found stopped at a resync and started again.
    repairs: int = 0
    errors: int = 0
    #: The last error of a start, stop or read, None once a pass succeeds.
    error: str | None = None


def to_json(status: SyncStatus) -> dict[str, Any]:
    """The ``sync`` member of the status document."""
    return {
        "daemons": [
            {
                "state": d.state,
                "interface": d.interface,
                "syncid": d.syncid,
                "configured": d.configured,
                "running": d.running,
                "started_by_ldirector": d.ours,
                "matches": d.matches,
            }
            for d in status.daemons
        ],
        "starts": status.starts,
        "stops": status.stops,
        "repairs": status.repairs,
        "errors": status.errors,
        "error": status.error,
    }


def from_json(doc: Any) -> SyncStatus:
    """Inverse of :func:`to_json`."""
    return SyncStatus(
        daemons=tuple(
            SyncDaemonStatus(
                state=str(d["state"]),
                interface=str(d["interface"]),
                syncid=int(d["syncid"]),
                configured=bool(d["configured"]),
                running=bool(d["running"]),
                ours=bool(d["started_by_ldirector"]),
                matches=bool(d["matches"]),
            )
            for d in doc["daemons"]
        ),
        starts=int(doc["starts"]),
        stops=int(doc["stops"]),
        repairs=int(doc["repairs"]),
        errors=int(doc["errors"]),
        error=None if doc.get("error") is None else str(doc["error"]),
    )


def describe(d: SyncDaemonStatus) -> str:
    """One role's state in a few words, for ``status -v``."""
    if d.running and not d.ours:
        state = "running, NOT started by ldirector (left alone)"
    elif d.running:
        state = "running" if d.matches or not d.configured else "running, DIFFERS from config"
    else:
        state = "NOT RUNNING" if d.configured else "not running"
    where = f" on {safe_text(d.interface)} syncid {d.syncid}" if d.interface else ""
    return f"sync {d.state}{where}: {state}"


def render_lines(status: SyncStatus) -> list[str]:
    """The ``status -v`` block: one line per role, then the last error if any."""
    lines = [describe(d) for d in status.daemons]
    if status.error:
        lines.append(f"sync daemon error: {safe_text(status.error)}")
    return lines


def metric_rows(status: SyncStatus) -> list[tuple[str, str, str, str, float]]:
    """(name, type, help, labels, value) rows of the ``ldirector_sync_*`` metrics."""
    rows: list[tuple[str, str, str, str, float]] = []
    for d in status.daemons:
        labels = f'state="{d.state}"'
        rows.append(("ldirector_sync_daemon_running", "gauge", _RUNNING, labels, int(d.running)))
        rows.append(("ldirector_sync_daemon_configured", "gauge", _CONF, labels, int(d.configured)))
        rows.append(("ldirector_sync_daemon_owned", "gauge", _OWNED, labels, int(d.ours)))
    rows.append(("ldirector_sync_daemon_starts_total", "counter", _STARTS, "", status.starts))
    rows.append(("ldirector_sync_daemon_repairs_total", "counter", _REPAIRS, "", status.repairs))
    rows.append(("ldirector_sync_daemon_errors_total", "counter", _ERRORS, "", status.errors))
    return rows


_RUNNING = "1 when the kernel runs the sync daemon of this role"
_CONF = "1 when the config asks for the sync daemon of this role"
_OWNED = "1 when ldirector started the running sync daemon of this role"
_STARTS = "sync daemons ldirector started"
_REPAIRS = "sync daemons of ldirector's found stopped and started again"
_ERRORS = "sync daemon starts, stops or reads the kernel refused"
