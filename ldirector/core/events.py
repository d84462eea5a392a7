"""One vocabulary for what ldirector tells operators, and the notices that carry it.

Pure. The engine words each change the kernel took (``ldirector.engine.oplog``) and each fact
only health knows (soft failures) as a ``Notice`` in ldirectord's wording (``core.wording``), so
existing log watchers keep matching; the daemon's log, email alerts and their reminders all
speak in these kinds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, assert_never

from ldirector.config.model import CheckService, CheckType, Fallback, Real, Virtual
from ldirector.core import wording

if TYPE_CHECKING:  # desired imports health, which imports this module
    from ldirector.core.desired import RealKey


class EventKind(enum.StrEnum):
    """What happened, as an operator reads it; each kind has one ldirectord log line."""

    #: The kernel took a real it did not hold, at its weight.
    ADDED = "added"
    #: The kernel gave a real it held at weight 0 its weight back.
    RESTORED = "restored"
    #: The kernel set a serving real's weight to 0.
    QUIESCED = "quiesced"
    #: The kernel dropped a configured real.
    DELETED = "deleted"
    #: The kernel took back, at weight 0, a quiesced real that had vanished (readdquiescent).
    READD_QUIESCENT = "readd-quiescent"
    #: The kernel dropped a real ldirector does not track, at start or at cleanstop.
    PURGED = "purged"
    #: The kernel took the fallback server.
    FALLBACK_ON = "fallback-on"
    #: The kernel dropped the fallback server.
    FALLBACK_OFF = "fallback-off"
    #: A check failed, not yet ``failurecount`` times in a row: the real stays in.
    SOFT_FAILURE = "soft-failure"
    #: A check passed after soft failures: their count starts again.
    RESET_SOFT_FAILURE = "failures-reset"
    #: The emailalertfreq reminder that a real is still out.
    INACCESSIBLE = "inaccessible"


def mailed(kind: EventKind) -> bool:
    """Whether ldirectord mails this kind (its reminders included): every change of a real or
    fallback the kernel took; soft failures and their reset are only logged."""
    match kind:
        case (
            EventKind.ADDED
            | EventKind.RESTORED
            | EventKind.QUIESCED
            | EventKind.DELETED
            | EventKind.READD_QUIESCENT
            | EventKind.PURGED
            | EventKind.FALLBACK_ON
            | EventKind.FALLBACK_OFF
            | EventKind.INACCESSIBLE
        ):
            return True
        case EventKind.SOFT_FAILURE | EventKind.RESET_SOFT_FAILURE:
            return False
        case _:
            assert_never(kind)


def serving_after(kind: EventKind) -> bool:
    """Whether the server serves after an event of this kind: what a batch of them comes to."""
    match kind:
        case (
            EventKind.ADDED
            | EventKind.RESTORED
            | EventKind.FALLBACK_ON
            | EventKind.SOFT_FAILURE
            | EventKind.RESET_SOFT_FAILURE
        ):
            return True
        case (
            EventKind.DELETED
            | EventKind.QUIESCED
            | EventKind.READD_QUIESCENT
            | EventKind.FALLBACK_OFF
            | EventKind.PURGED
            | EventKind.INACCESSIBLE
        ):
            return False
        case _:
            assert_never(kind)


class Phase(enum.StrEnum):
    """When ldirector purges what it does not track: at start (or reload), or at cleanstop."""

    START = "start"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Notice:
    """A change worth telling an operator about, already worded.

    ``server`` is the real's or fallback's ``RIP:PORT`` (as configured), ``message`` the line
    logged for it; ``real`` is None for the fallback.
    """

    kind: EventKind
    virtual: Virtual
    server: str
    message: str
    real: RealKey | None = None


@dataclass(frozen=True, slots=True)
class Detail:
    """What some lines say besides the server: the weight the kernel was told (added,
    restored), when a purge happened, and the soft failures counted."""

    weight: int = 0
    phase: Phase = Phase.START
    failures: int = 0
    failurecount: int = 0


NO_DETAIL = Detail()


def line(kind: EventKind, virtual: Virtual, server: str, detail: Detail = NO_DETAIL) -> str:
    """ldirectord's log line for ``kind`` about ``server`` of ``virtual``."""
    vip, d = virtual.endpoint, detail
    match kind:
        case EventKind.ADDED:
            return wording.added_real_message(server, vip, d.weight)
        case EventKind.RESTORED:
            return wording.restored_real_message(server, vip, d.weight)
        case EventKind.QUIESCED:
            return wording.quiescent_real_message(server, vip)
        case EventKind.DELETED:
            return wording.deleted_real_message(server, vip)
        case EventKind.READD_QUIESCENT:
            return wording.readd_quiescent_message(server, vip)
        case EventKind.PURGED:
            return wording.purged_real_message(server, vip, d.phase)
        case EventKind.FALLBACK_ON:
            return wording.added_fallback_message(server, vip)
        case EventKind.FALLBACK_OFF:
            return wording.deleted_fallback_message(server, vip)
        case EventKind.SOFT_FAILURE:
            return wording.soft_failure_message(server, virtual.vid, d.failures, d.failurecount)
        case EventKind.RESET_SOFT_FAILURE:
            return wording.reset_soft_failure_message(server, virtual.vid)
        case EventKind.INACCESSIBLE:
            return wording.inaccessible_real_message(server, vip)
        case _:
            assert_never(kind)


def about_real(
    kind: EventKind, virtual: Virtual, key: RealKey, real: Real, detail: Detail = NO_DETAIL
) -> Notice:
    """A notice about a configured real, named as configured (gate and ipip reals sit in the
    kernel at the virtual's port, but their lines name the configured one)."""
    server = wording.hostport(real.address, real.port)
    return Notice(kind, virtual, server, line(kind, virtual, server, detail), key)


def purged(virtual: Virtual, key: RealKey, phase: Phase) -> Notice:
    """``Purged real server (<phase>): RIP:PORT (VIP:PORT)`` for a real the config does not
    have, named as the kernel holds it."""
    server = str(key.dest)
    text = line(EventKind.PURGED, virtual, server, Detail(phase=phase))
    return Notice(EventKind.PURGED, virtual, server, text, key)


def about_fallback(kind: EventKind, virtual: Virtual, fallback: Fallback) -> Notice:
    """``Added fallback server`` / ``Deleted fallback server``, the fallback as configured."""
    server = wording.hostport(fallback.address, fallback.port)
    return Notice(kind, virtual, server, line(kind, virtual, server))


#: The log record attribute a notice's fields ride on (``extra={LOG_FIELDS: fields(n)}``), so
#: the daemon's journal handler can show them beside the line (``LDIRECTOR_EVENT``, ...).
LOG_FIELDS = "ldirector_fields"


def fields(notice: Notice) -> dict[str, str]:
    """What a notice is about, for log fields: its kind, its virtual (ldirectord's id), the
    real or fallback it names and, for a configured real, the check its virtual runs."""
    virtual = notice.virtual
    out = {"event": notice.kind.value, "virtual": virtual.vid}
    if notice.real is None:
        out["fallback"] = notice.server
        return out
    out["real"] = notice.server
    if notice.kind is not EventKind.PURGED:  # a purged real may be one no check ever ran on
        negotiates = virtual.checktype in (CheckType.NEGOTIATE, CheckType.COMBINED)
        named = negotiates and virtual.service is not CheckService.NONE
        out["check"] = virtual.service.value if named else virtual.checktype.value
    return out
