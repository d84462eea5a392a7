"""An in-memory IPVS table with the kernel's error semantics, shipped for tests and dry runs.

It answers each op the way `ip_vs_ctl.c` does (EEXIST, ESRCH, ENOENT, EINVAL, ERANGE), so code
tested against it meets the same failures against the kernel. It records every batch applied.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import replace
from types import MappingProxyType

from ldirector.ipvs.backend import ApplyError, IpvsError, op_error
from ldirector.ipvs.types import (
    SCHEDULERS,
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestKey,
    EditDest,
    EditService,
    Family,
    Forward,
    IpvsTable,
    Op,
    Service,
    ServiceKey,
    VirtualService,
    family_of,
)


class FakeBackend:
    """A dict-based IPVS table. ``batches`` holds every op list passed to :meth:`apply`."""

    def __init__(self, table: IpvsTable | None = None) -> None:
        self._services: dict[ServiceKey, Service] = {}
        self._dests: dict[ServiceKey, dict[DestKey, Dest]] = {}
        self.batches: list[list[Op]] = []
        self.fail_next: dict[int, int] = {}  # op index in the next batch -> errno to inject
        for vs in table or IpvsTable():
            self._services[vs.key] = vs.service
            self._dests[vs.key] = dict(vs.dests)

    @property
    def table(self) -> IpvsTable:
        """The current table (synchronous, for tests)."""
        return IpvsTable.of(
            *(
                VirtualService(svc, MappingProxyType(dict(self._dests[key])))
                for key, svc in self._services.items()
            )
        )

    async def dump(self) -> IpvsTable:
        """Return the current table."""
        return self.table

    async def apply(self, ops: Sequence[Op]) -> None:
        """Apply every op; raise ApplyError for those the kernel would refuse."""
        self.batches.append(list(ops))
        inject, self.fail_next = self.fail_next, {}
        failures: list[IpvsError] = []
        for index, op in enumerate(ops):
            code = inject.get(index) or self.apply_one(op)
            if code:
                failures.append(op_error(op, code))
        if failures:
            raise ApplyError(failures)

    async def close(self) -> None:
        """Nothing to release."""

    def apply_one(self, op: Op) -> int:
        """Apply one op; return 0 or the errno the kernel would return."""
        match op:
            case AddService(service=svc):
                if svc.key in self._services:
                    return errno.EEXIST
                code = _check_service(svc)
                if not code:
                    self._services[svc.key] = replace(svc, stats=None)
                    self._dests[svc.key] = {}
                return code
            case EditService(service=svc):
                if svc.key not in self._services:
                    return errno.ESRCH
                code = _check_service(svc)
                if not code:
                    self._services[svc.key] = replace(svc, stats=None)
                return code
            case DelService(key=key):
                if key not in self._services:
                    return errno.ESRCH
                del self._services[key]
                del self._dests[key]
                return 0
            case AddDest(service=key, dest=dest) | EditDest(service=key, dest=dest):
                if key not in self._services:
                    return errno.ESRCH
                dests = self._dests[key]
                exists = dest.key in dests
                if isinstance(op, AddDest) and exists:
                    return errno.EEXIST
                if isinstance(op, EditDest) and not exists:
                    return errno.ENOENT
                code = _check_dest(key, dest)
                if not code:
                    dests[dest.key] = replace(dest, counters=None)
                return code
            case DelDest(service=key, dest=dkey):
                if key not in self._services:
                    return errno.ESRCH
                if self._dests[key].pop(dkey, None) is None:
                    return errno.ENOENT
                return 0


def _check_service(svc: Service) -> int:
    # The kernel loads ip_vs_<sched> on demand and answers ENOENT when there is no such module.
    if svc.scheduler not in SCHEDULERS:
        return errno.ENOENT
    if svc.pe_name is not None and svc.pe_name != "sip":
        return errno.ENOENT
    # An IPv6 netmask is a prefix length the kernel checks; an IPv4 one is any 32-bit mask.
    if svc.key.family is Family.INET6 and not 1 <= svc.prefix <= 128:
        return errno.EINVAL
    return 0


def _check_dest(key: ServiceKey, dest: Dest) -> int:
    if dest.weight < 0:
        return errno.ERANGE
    if dest.lower > dest.upper:  # the kernel checks this even when upper is 0 (unset)
        return errno.ERANGE
    # Mixed-family destinations exist only for tunnels.
    if family_of(dest.address) != key.family and dest.forward is not Forward.IPIP:
        return errno.EINVAL
    return 0
