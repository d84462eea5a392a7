"""What the engine says about the ops the kernel took, in ldirectord's wording.

Sits after the backend: ``TableWriter.apply`` hands :func:`announce` the ops the kernel accepted,
and only those, with the table they were computed against. So a line says what the kernel did:
a real an operator holds out, or one the kernel does not hold, is never "Restored", and a real
is "Deleted" only once the kernel has dropped it. Changes of reals and fallbacks become notices
(the log line, email alerts); changes of virtual services are only logged, as ldirectord does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import assert_never

from ldirector.config.model import Config, Real, Virtual
from ldirector.core import wording
from ldirector.core.desired import RealKey, fallback_dest, service_key
from ldirector.core.events import (
    Detail,
    EventKind,
    Notice,
    Phase,
    about_fallback,
    about_real,
    purged,
)
from ldirector.core.health import RealHealth, Status
from ldirector.ipvs.backend import describe
from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.types import DestKey, FwmarkServiceKey, IpvsTable, ServiceKey

# The engine's logger: every line about the table comes from one name, so one filter sees them.
log = logging.getLogger(__name__)


def endpoint(key: ServiceKey) -> str:
    """A service as ldirectord names it in its log: ``VIP:PORT``, or the firewall mark."""
    if isinstance(key, FwmarkServiceKey):
        return str(key.fwmark)
    return wording.hostport(key.address, key.port)


@dataclass(frozen=True, slots=True)
class Basis:
    """What the ops were decided from: the config, its reals and their health."""

    config: Config
    reals: Mapping[RealKey, tuple[Virtual, Real]]
    health: Mapping[RealKey, RealHealth]
    virtual_of: Callable[[ServiceKey], Virtual | None]


def announce(
    applied: Iterable[Op],
    phase: Phase,
    before: IpvsTable,
    basis: Basis,
    notify: Callable[[Notice], None],
) -> None:
    """Log each op the kernel took and ``notify`` the changes of reals and fallbacks.

    ``before`` is the table the ops were computed against: it says whether a real was out or
    at weight 0 before. Within a batch the reals are told before the fallback, in ldirectord's
    order: a real goes, then the fallback comes; a real comes, then the fallback goes.
    """
    fallbacks: list[Notice] = []
    for op in applied:
        match op:
            case AddService(service=svc):
                log.info("%s", wording.added_virtual_message(endpoint(svc.key)))
                continue
            case EditService(service=svc):
                log.info("%s", wording.changed_virtual_message(endpoint(svc.key)))
                continue
            case DelService(key=key):
                if phase is Phase.STOP and key in before.services:
                    _purge_serving(key, before, basis, notify)
                log.info("%s", wording.purged_virtual_message(endpoint(key), phase))
                continue
            case AddDest(service=key, dest=dest):
                notice = _dest(key, dest.key, None, dest.weight, phase, basis)
            case EditDest(service=key, dest=dest):
                was = _weight(before, key, dest.key)
                notice = _dest(key, dest.key, was, dest.weight, phase, basis)
            case DelDest(service=key, dest=dkey):
                notice = _dest(key, dkey, _weight(before, key, dkey), None, phase, basis)
            case _:
                assert_never(op)
        if notice is None:  # a change the operator reads nothing into (a weight, a threshold)
            log.debug("%s", describe(op))
        elif notice.real is None:
            fallbacks.append(notice)
        else:
            notify(notice)
    for notice in fallbacks:
        notify(notice)


def _weight(table: IpvsTable, key: ServiceKey, dest: DestKey) -> int | None:
    vs = table.services.get(key)
    found = vs.dests.get(dest) if vs else None
    return None if found is None else found.weight


def _dest(
    key: ServiceKey,
    dest: DestKey,
    was: int | None,
    now: int | None,
    phase: Phase,
    basis: Basis,
) -> Notice | None:
    """The notice for a destination whose weight went from ``was`` to ``now`` (None: absent)."""
    rkey = RealKey(key, dest)
    if rkey in basis.reals:
        virtual, real = basis.reals[rkey]
        kind = _real_kind(rkey, virtual, was, now, basis)
        if kind is None:
            return None
        return about_real(kind, virtual, rkey, real, Detail(weight=now or 0))
    for virtual in basis.config.virtuals:
        fallback = virtual.fallback
        if fallback is None or service_key(virtual) != key:
            continue
        if fallback_dest(virtual, fallback).key == dest:
            if was is not None and now is not None:
                return None  # edited in place (its forward method): still the fallback
            kind = EventKind.FALLBACK_ON if was is None else EventKind.FALLBACK_OFF
            return about_fallback(kind, virtual, fallback)
    owner = basis.virtual_of(key)
    if now is None and owner is not None:  # neither a real nor the fallback: untracked
        return purged(owner, rkey, phase)
    return None


def _real_kind(
    key: RealKey, virtual: Virtual, was: int | None, now: int | None, basis: Basis
) -> EventKind | None:
    """ldirectord's word for a configured real the kernel moved from ``was`` to ``now``."""
    if now is None:
        return EventKind.DELETED
    if was is None and now > 0:
        return EventKind.ADDED
    if was is None:  # put back at weight 0: a quiesced real that had vanished
        state = basis.health.get(key)
        down = state is None or state.status is not Status.UP
        readd = basis.config.readdquiescent and virtual.quiescent and down
        return EventKind.READD_QUIESCENT if readd else None
    if was == 0 and now > 0:
        return EventKind.RESTORED
    if was > 0 and now == 0:
        return EventKind.QUIESCED
    return None  # a new weight or threshold for a real that stays in: nothing to tell


def _purge_serving(
    key: ServiceKey, before: IpvsTable, basis: Basis, notify: Callable[[Notice], None]
) -> None:
    """At cleanstop, tell each configured real the deleted service was serving (weight > 0)."""
    dests = before.services[key].dests
    for dkey in sorted(dests, key=lambda d: d.sort_key):
        rkey = RealKey(key, dkey)
        if rkey in basis.reals and dests[dkey].weight > 0:
            virtual, real = basis.reals[rkey]
            notify(about_real(EventKind.PURGED, virtual, rkey, real, Detail(phase=Phase.STOP)))
