"""What the engine tells operators: a transition or a purge, its server, ldirectord's wording.

Sits at the engine's edge: ``Engine`` logs ``message`` and hands each ``Notice`` to its
``on_event`` callback (email alerts, metrics). The wording itself lives in ``ldirector.logs``
(one source for every line), so existing log watchers keep matching.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ldirector import logs
from ldirector.config.model import Real, Virtual
from ldirector.desired import RealKey
from ldirector.health import Event, EventKind

#: ``Notice.kind`` of a real removed by ldirector itself: not configured (``start``) or at
#: cleanstop (``stop``). ldirectord mails these like any other change of a real.
PURGED = "purged"
#: ``Notice.kind`` of a quiesced real put back at weight 0 after it vanished from the kernel
#: (``readdquiescent=yes``).
READD_QUIESCENT = "readd-quiescent"


@dataclass(frozen=True, slots=True)
class Notice:
    """A change worth telling an operator about; ``real`` is None for fallback events.

    ``event`` is the health transition, or None for what the engine did on its own: then
    ``action`` says what (``PURGED``, with ``phase`` ``start`` or ``stop``; ``READD_QUIESCENT``).
    ``server`` is the real's or fallback's ``RIP:PORT`` and ``message`` the line logged for it
    in ldirectord's wording (empty when nothing is logged, e.g. no fallback server is set).
    """

    virtual: Virtual
    event: Event | None
    real: RealKey | None = None
    server: str = ""
    message: str = ""
    phase: str = ""
    action: str = ""

    @property
    def kind(self) -> str:
        """The health transition's kind (``ldirector.health.EventKind``) or the action."""
        return self.action if self.event is None else str(self.event.kind)


def purged(virtual: Virtual, key: RealKey, phase: str, real: Real | None = None) -> Notice:
    """``Purged real server (<phase>): RIP:PORT (VIP:PORT)``, already worded.

    A configured ``real`` is named as configured, like its other lines (gate and ipip reals
    sit in the kernel at the virtual's port); an unknown one as the kernel holds it.
    """
    server = str(key.dest) if real is None else logs.hostport(real.address, real.port)
    message = logs.purged_real_message(server, virtual.endpoint, phase)
    return Notice(virtual, None, key, server, message, phase, PURGED)


def readd_quiescent(virtual: Virtual, key: RealKey, real: Real) -> Notice:
    """``Readd Quiescent real server: RIP:PORT (VIP:PORT) (Weight set to 0)``, worded."""
    rip = logs.hostport(real.address, real.port)
    message = logs.readd_quiescent_message(rip, virtual.endpoint)
    return Notice(virtual, None, key, rip, message, action=READD_QUIESCENT)


def worded(notice: Notice, reals: Mapping[RealKey, tuple[Virtual, Real]]) -> Notice:
    """The notice with its server and ldirectord's wording, so log watchers keep matching."""
    if notice.event is None or notice.message:  # a purge, or already worded
        return notice
    v, kind = notice.virtual, notice.event.kind
    if notice.real is None:
        if v.fallback is None:
            return notice
        where = logs.hostport(v.fallback.address, v.fallback.port)
        if kind is EventKind.FALLBACK_ON:
            return replace(
                notice, server=where, message=logs.added_fallback_message(where, v.endpoint)
            )
        return replace(
            notice, server=where, message=logs.deleted_fallback_message(where, v.endpoint)
        )
    _, real = reals[notice.real]
    rip = logs.hostport(real.address, real.port)
    return replace(notice, server=rip, message=_real_message(notice.event, v, real, rip))


def _real_message(e: Event, v: Virtual, real: Real, rip: str) -> str:
    match e.kind:
        case EventKind.ADDED:
            return logs.added_real_message(rip, v.endpoint, real.weight)
        case EventKind.RESTORED:
            return logs.restored_real_message(rip, v.endpoint, real.weight)
        case EventKind.QUIESCED:
            return logs.quiescent_real_message(rip, v.endpoint)
        case EventKind.DELETED:
            return logs.deleted_real_message(rip, v.endpoint)
        case EventKind.SOFT_FAILURE:
            return logs.soft_failure_message(rip, v.vid, e.failures, e.failurecount)
        case _:
            return logs.reset_soft_failure_message(rip, v.vid)
