"""What the engine says about the ops it applies, in ldirectord's wording, before applying them.

Sits between ``reconcile.diff`` and the backend: ``Engine._apply`` calls :func:`announce` with
the ops it is about to apply, then applies them. Each op is logged the way ldirectord logs it,
and the ops that remove or put back a real become notices (email alerts, metrics), so existing
log watchers and alert rules keep matching.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from ldirector import logs
from ldirector.config.model import Config, Real, Virtual
from ldirector.desired import RealKey, fallback_dest, service_key
from ldirector.engine.notices import Notice, purged, readd_quiescent
from ldirector.health import RealHealth, Status
from ldirector.ipvs.backend import describe
from ldirector.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    DestKey,
    EditService,
    FwmarkServiceKey,
    IpvsTable,
    Op,
    ServiceKey,
)

# Logged under the engine's name, as before this module was split out: log filters keep working.
log = logging.getLogger("ldirector.engine.core")


def endpoint(key: ServiceKey) -> str:
    """A service as ldirectord names it in its log: ``VIP:PORT``, or the firewall mark."""
    if isinstance(key, FwmarkServiceKey):
        return str(key.fwmark)
    return logs.hostport(key.address, key.port)


def announce(
    ops: Iterable[Op],
    phase: str,
    *,
    config: Config,
    reals: Mapping[RealKey, tuple[Virtual, Real]],
    health: Mapping[RealKey, RealHealth],
    virtual_of: Callable[[ServiceKey], Virtual | None],
    notify: Callable[[Notice], None],
    actual: IpvsTable | None = None,
) -> None:
    """Log each op in ldirectord's wording and ``notify`` the purges and re-adds among them.

    ``actual`` (at cleanstop) names the reals each deleted service held, so those thought up
    are told as purged first.
    """
    for op in ops:
        match op:
            case AddService(service=svc):
                log.info("%s", logs.added_virtual_message(endpoint(svc.key)))
            case EditService(service=svc):
                log.info("%s", logs.changed_virtual_message(endpoint(svc.key)))
            case DelService(key=key):
                if actual is not None and key in actual.services:
                    _purge_up(key, actual.services[key].dests, phase, reals, health, notify)
                log.info("%s", logs.purged_virtual_message(endpoint(key), phase))
            case AddDest(service=key, dest=dest) if dest.weight == 0:
                _readded(RealKey(key, dest.key), config, reals, health, notify)
            case DelDest(service=key, dest=dest) if RealKey(key, dest) not in reals:
                fallbacks = {
                    fallback_dest(v, v.fallback).key
                    for v in config.virtuals
                    if v.fallback is not None and service_key(v) == key
                }
                virtual = virtual_of(key)
                if dest not in fallbacks and virtual is not None:  # not real nor fallback
                    notify(purged(virtual, RealKey(key, dest), phase))
            case _:
                log.debug("%s", describe(op))


def _purge_up(
    key: ServiceKey,
    dests: Iterable[DestKey],
    phase: str,
    reals: Mapping[RealKey, tuple[Virtual, Real]],
    health: Mapping[RealKey, RealHealth],
    notify: Callable[[Notice], None],
) -> None:
    """Tell each real of a service being deleted that ldirector thought up (cleanstop)."""
    for dkey in sorted(dests, key=lambda d: d.sort_key):
        rkey = RealKey(key, dkey)
        state = health.get(rkey)
        if state is not None and state.status is Status.UP:
            virtual, real = reals[rkey]
            notify(purged(virtual, rkey, phase, real))


def _readded(
    key: RealKey,
    config: Config,
    reals: Mapping[RealKey, tuple[Virtual, Real]],
    health: Mapping[RealKey, RealHealth],
    notify: Callable[[Notice], None],
) -> None:
    """A real not up added at weight 0 is a quiesced one put back (readdquiescent=yes)."""
    state = health.get(key)
    if state is None or state.status is Status.UP or not config.readdquiescent:
        return
    virtual, real = reals[key]
    if virtual.quiescent:
        notify(readd_quiescent(virtual, key, real))
