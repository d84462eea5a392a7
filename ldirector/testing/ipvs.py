"""An in-memory IPVS table with the kernel's error semantics, for tests of code that drives IPVS.

It answers each op the way `ip_vs_ctl.c` does (EEXIST, ESRCH, ENOENT, EINVAL, ERANGE), so code
tested against it meets the same failures against the kernel. It records every batch applied.
A seed table may hold foreign entries (ones ldirector cannot read); they occupy their keys
like the kernel's do, are dumped back unchanged, and change only when an op replaces them.
"""

from __future__ import annotations

import errno
from collections.abc import Collection, Sequence
from dataclasses import replace
from types import MappingProxyType

from ldirector.ipvs.backend import ApplyError, IpvsError, daemon_error, op_error
from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import (
    SCHEDULERS,
    Dest,
    DestKey,
    Family,
    ForeignDest,
    ForeignService,
    Forward,
    IpvsTable,
    Service,
    ServiceKey,
    VirtualService,
    family_of,
)

#: The sync payload size the fake reports when none was asked for: what the kernel derives
#: from a 1500-byte Ethernet MTU minus the IPv4 and UDP headers.
DEFAULT_MAXLEN = 1472


class FakeBackend:
    """A dict-based IPVS table. ``batches`` holds every op list passed to :meth:`apply`,
    ``dumps`` what each :meth:`dump` asked for.

    ``interfaces`` names the network interfaces a sync daemon may use (None: any name).
    """

    def __init__(
        self, table: IpvsTable | None = None, *, interfaces: Collection[str] | None = None
    ) -> None:
        self._services: dict[ServiceKey, Service | ForeignService] = {}
        self._dests: dict[ServiceKey, dict[DestKey, Dest | ForeignDest]] = {}
        self._unkeyed_dests: dict[ServiceKey, list[ForeignDest]] = {}
        self._unkeyed: list[ForeignService] = []  # no op can name these
        self._daemons: dict[DaemonState, SyncDaemon] = {}
        self._interfaces = None if interfaces is None else frozenset(interfaces)
        self.batches: list[list[Op]] = []
        #: Every dump asked for: None for the whole table, else the services asked for.
        self.dumps: list[frozenset[ServiceKey] | None] = []
        self.fail_next: dict[int, int] = {}  # op index in the next batch -> errno to inject
        table = table or IpvsTable()
        for vs in table:
            self._services[vs.key] = vs.service
            self._dests[vs.key] = dict(vs.dests)
            for odd in vs.foreign:
                if odd.key is None:
                    self._unkeyed_dests.setdefault(vs.key, []).append(odd)
                else:
                    self._dests[vs.key][odd.key] = odd
        for svc in table.foreign:
            if svc.key is None:
                self._unkeyed.append(svc)
            else:
                self._services[svc.key] = svc
                self._dests[svc.key] = {}

    @property
    def table(self) -> IpvsTable:
        """The current table (synchronous, for tests)."""
        readable = []
        foreign = list(self._unkeyed)
        for key, svc in self._services.items():
            if isinstance(svc, ForeignService):
                foreign.append(svc)  # the kernel backend cannot list a foreign service's reals
                continue
            dests = self._dests[key]
            readable.append(
                VirtualService(
                    svc,
                    MappingProxyType({k: d for k, d in dests.items() if isinstance(d, Dest)}),
                    (
                        *(d for d in dests.values() if isinstance(d, ForeignDest)),
                        *self._unkeyed_dests.get(key, ()),
                    ),
                )
            )
        return IpvsTable.of(*readable, foreign=foreign)

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        """Return the current table (with ``only``, just those services)."""
        self.dumps.append(None if only is None else frozenset(only))
        return self.table if only is None else self.table.only(only)

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

    async def daemons(self) -> tuple[SyncDaemon, ...]:
        """The running sync daemons, master first."""
        return tuple(self._daemons[state] for state in sorted(self._daemons))

    async def start_daemon(self, daemon: SyncDaemon) -> None:
        """Start a sync daemon, refusing what the kernel refuses."""
        code = 0
        if self._interfaces is not None and daemon.interface not in self._interfaces:
            code = errno.ENODEV
        elif daemon.state in self._daemons:
            code = errno.EEXIST
        elif self._mixes_families():
            code = errno.EINVAL
        if code:
            raise daemon_error(daemon.state, code, daemon.interface)
        maxlen = daemon.maxlen if daemon.maxlen is not None else DEFAULT_MAXLEN
        self._daemons[daemon.state] = replace(daemon, maxlen=maxlen)

    async def stop_daemon(self, state: DaemonState) -> None:
        """Stop the sync daemon of this role."""
        if self._daemons.pop(state, None) is None:
            raise daemon_error(state, errno.ESRCH)

    async def close(self) -> None:
        """Nothing to release."""

    def _mixes_families(self) -> bool:
        return any(
            isinstance(dest, Dest) and family_of(dest.address) != key.family
            for key, dests in self._dests.items()
            for dest in dests.values()
        )

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
                self._unkeyed_dests.pop(key, None)
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
