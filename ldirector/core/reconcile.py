"""Pure reconciliation: (desired table, actual table, owned keys) -> ordered IPVS ops.

Level-triggered: the same inputs always give the same ops, and applying them to `actual` yields
`desired` on every owned service while every other service stays exactly as it was.
"""

from __future__ import annotations

from collections.abc import Set

from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.types import DestKey, IpvsTable, ServiceKey


def diff(desired: IpvsTable, actual: IpvsTable, owned: Set[ServiceKey]) -> list[Op]:
    """The ops that turn ``actual`` into ``desired`` on the services in ``owned``.

    ``owned`` is every service ldirector manages (the current config and any it managed before);
    it must include every desired service. An owned service absent from ``desired`` is deleted;
    a service not in ``owned`` is never named by any op, even if ``actual`` holds it. Inside an
    owned service, destinations that are not desired are removed, as ldirectord purges them.

    Order: add services, edit services, add and edit destinations, delete destinations, delete
    services. Destinations are added before others are removed so a service never goes empty in
    between, and within each group ops follow key order so the output is deterministic.
    """
    stray = desired.services.keys() - owned
    if stray:
        names = ", ".join(sorted(str(k) for k in stray))
        raise ValueError(f"desired services are not in the owned set: {names}")

    add_svc: list[Op] = []
    edit_svc: list[Op] = []
    set_dest: list[Op] = []
    del_dest: list[Op] = []
    del_svc: list[Op] = []
    # An entry ldirector cannot read is never named by an op, even under an owned key: adding
    # beside it would fail or, for reals, land inside a service ldirector cannot see.
    held = {f.key for f in actual.foreign if f.key is not None}
    for key in sorted(owned - held, key=lambda k: k.sort_key):
        want = desired.services.get(key)
        have = actual.services.get(key)
        if want is None:
            if have is not None:
                del_svc.append(DelService(key))
            continue
        held_dests: set[DestKey] = set()
        if have is None:
            add_svc.append(AddService(want.service))
            have_dests = {}
        else:
            if have.service != want.service:
                edit_svc.append(EditService(want.service))
            have_dests = dict(have.dests)
            held_dests = {f.key for f in have.foreign if f.key is not None}
        wanted = (want.dests.keys() | have_dests.keys()) - held_dests
        for dkey in sorted(wanted, key=lambda d: d.sort_key):
            dest = want.dests.get(dkey)
            old = have_dests.get(dkey)
            if dest is None:
                del_dest.append(DelDest(key, dkey))
            elif old is None:
                set_dest.append(AddDest(key, dest))
            elif old != dest:
                set_dest.append(EditDest(key, dest))
    return add_svc + edit_svc + set_dest + del_dest + del_svc
