"""What the engine tells operators: a transition, its server and ldirectord's log wording.

Sits at the engine's edge: ``Engine`` logs ``message`` and hands each ``Notice`` to its
``on_event`` callback (email alerts, metrics). The wording comes from ``ldirector.logs`` so
existing log watchers keep matching.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from ldirector import logs
from ldirector.config.model import Real, Virtual
from ldirector.desired import RealKey
from ldirector.health import Event, EventKind


@dataclass(frozen=True, slots=True)
class Notice:
    """A transition worth telling an operator about; ``real`` is None for fallback events.

    ``server`` is the real's or fallback's ``RIP:PORT`` and ``message`` the line logged for it
    in ldirectord's wording (empty when nothing is logged, e.g. no fallback server is set).
    """

    virtual: Virtual
    event: Event
    real: RealKey | None = None
    server: str = ""
    message: str = ""


def worded(notice: Notice, reals: Mapping[RealKey, tuple[Virtual, Real]]) -> Notice:
    """The notice with its server and ldirectord's wording, so log watchers keep matching."""
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
    return replace(notice, server=rip, message=_real_message(notice, real, rip))


def _real_message(notice: Notice, real: Real, rip: str) -> str:
    v, kind = notice.virtual, notice.event.kind
    match kind:
        case EventKind.ADDED:
            return logs.added_real_message(rip, v.endpoint, real.weight)
        case EventKind.RESTORED:
            return logs.restored_real_message(rip, v.endpoint, real.weight)
        case EventKind.QUIESCED:
            return logs.quiescent_real_message(rip, v.endpoint)
        case EventKind.DELETED:
            return logs.deleted_real_message(rip, v.endpoint)
        case EventKind.SOFT_FAILURE:
            e = notice.event
            return logs.soft_failure_message(rip, v.vid, e.failures, e.failurecount)
        case _:
            return logs.reset_soft_failure_message(rip, v.vid)
