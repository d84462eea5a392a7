"""The IPVS table as typed values: what `desired()` produces and what backends dump (the ops
that change it are ``ldirector.ipvs.ops``).

Everything here is frozen and pure. Kernel counters ride along on dumped values but never take
part in equality, so a dumped table compares equal to the desired one it was built from.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import MappingProxyType
from typing import Final, NamedTuple

IPAddress = IPv4Address | IPv6Address


class Family(enum.IntEnum):
    """Address family of a service (Linux AF_* numbers)."""

    INET = 2
    INET6 = 10

    @property
    def max_prefix(self) -> int:
        """The full-length prefix: the persistence netmask that groups nothing together."""
        return 32 if self is Family.INET else 128


def family_of(address: IPAddress) -> Family:
    """The family an address belongs to."""
    return Family.INET if address.version == 4 else Family.INET6


class Protocol(enum.IntEnum):
    """Transport protocol of an address service (IPPROTO_* numbers)."""

    TCP = 6
    UDP = 17
    SCTP = 132

    @property
    def word(self) -> str:
        """The lower-case name ldirectord and ipvsadm use."""
        return self.name.lower()


class Forward(enum.IntEnum):
    """Forwarding method of a destination (IP_VS_CONN_F_* numbers), named as in ldirectord."""

    MASQ = 0  # "masq": NAT
    LOCAL = 1  # local node; ldirectord cannot configure it, but the kernel may report it
    IPIP = 2  # "ipip": tunnelling
    GATE = 3  # "gate": direct routing

    @property
    def word(self) -> str:
        """The ldirectord word for this method."""
        return self.name.lower()


class SchedFlags(enum.IntFlag):
    """Service flags a user chooses (PERSISTENT and HASHED are derived/kernel-owned, not here).

    SCHED1..3 mean different things per scheduler: for sh and mh, SCHED1 is ``*-fallback`` and
    SCHED2 is ``*-port``.
    """

    NONE = 0
    ONEPACKET = 0x4
    SCHED1 = 0x8
    SCHED2 = 0x10
    SCHED3 = 0x20


#: Flag bits of the kernel's service flags word that are not user choices.
FLAG_PERSISTENT: Final = 0x1
FLAG_HASHED: Final = 0x2

SCHEDULERS: Final = frozenset(
    {"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}
)
"""Schedulers Debian's kernel ships as modules; the fake backend rejects others like the kernel."""

SCHEDFLAG_WORDS: Final = {
    "flag-1": SchedFlags.SCHED1,
    "flag-2": SchedFlags.SCHED2,
    "flag-3": SchedFlags.SCHED3,
    "sh-fallback": SchedFlags.SCHED1,
    "sh-port": SchedFlags.SCHED2,
    "mh-fallback": SchedFlags.SCHED1,
    "mh-port": SchedFlags.SCHED2,
}
"""ipvsadm's ``-b`` words for the scheduler flags; ``flag-N`` is the generic name of each."""


@dataclass(frozen=True, slots=True)
class InetServiceKey:
    """A service selected by protocol, address and port (``-t``, ``-u``, ``--sctp-service``)."""

    protocol: Protocol
    address: IPAddress
    port: int
    # Keys index every table map; an address hashes by formatting itself, so once is enough.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"virtual {self.address}: port {self.port} out of range 0..65535")
        object.__setattr__(self, "_hash", hash((self.protocol, self.address, self.port)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def family(self) -> Family:
        """Family of the virtual address."""
        return family_of(self.address)

    @property
    def sort_key(self) -> tuple[int, int, int, int, int]:
        """A total order over all service keys, for deterministic op lists."""
        return (0, self.family, int(self.address), self.port, self.protocol)

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.protocol.word}:{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FwmarkServiceKey:
    """A service selected by firewall mark and family (``-f MARK`` or ``-f MARK -6``)."""

    family: Family
    fwmark: int

    def __post_init__(self) -> None:
        if not 0 < self.fwmark < 2**32:
            raise ValueError(f"firewall mark {self.fwmark} out of range 1..4294967295")

    @property
    def sort_key(self) -> tuple[int, int, int, int, int]:
        """A total order over all service keys, for deterministic op lists."""
        return (1, self.family, self.fwmark, 0, 0)

    def __str__(self) -> str:
        return f"fwm{'6' if self.family is Family.INET6 else ''}:{self.fwmark}"


ServiceKey = InetServiceKey | FwmarkServiceKey


def parse_service_key(text: str) -> ServiceKey:
    """Inverse of ``str(key)``: ``tcp:192.0.2.1:80``, ``udp:[2001:db8::1]:53``, ``fwm6:7``.

    Raises ValueError with a one-line message on anything else.
    """
    kind, sep, rest = text.partition(":")
    if not sep:
        raise ValueError(f"not an IPVS service key: {text!r}")
    try:
        if kind in ("fwm", "fwm6"):
            mark = _digits(rest)
            if not 0 < mark < 2**32:
                raise ValueError
            return FwmarkServiceKey(Family.INET6 if kind == "fwm6" else Family.INET, mark)
        proto = Protocol[kind.upper()]
        host, _, port_text = rest.rpartition(":")
        port = _digits(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
        return InetServiceKey(proto, ip_address(host.strip("[]")), port)
    except (KeyError, ValueError):
        raise ValueError(f"not an IPVS service key: {text!r}") from None


def _digits(text: str) -> int:
    # int() takes " 80" and Arabic-Indic digits; a key is written with ASCII digits only.
    if not (0 < len(text) <= 10 and text.isascii() and text.isdigit()):
        raise ValueError(text)
    return int(text)


class Stats(NamedTuple):
    """Traffic counters and rate estimates the kernel keeps per service and per destination.

    Named tuples, not dataclasses: a dump builds one per real, and a frozen dataclass costs
    several times more to build (`ldirector.ipvs.layout`)."""

    conns: int = 0
    in_packets: int = 0
    out_packets: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    cps: int = 0
    in_pps: int = 0
    out_pps: int = 0
    in_bps: int = 0
    out_bps: int = 0


class DestCounters(NamedTuple):
    """Per-destination connection counts (what ``ipvsadm -L`` shows) plus its traffic stats."""

    active_conns: int = 0
    inactive_conns: int = 0
    persist_conns: int = 0
    stats: Stats = Stats()


@dataclass(frozen=True, slots=True, kw_only=True)
class Service:
    """A virtual service's own attributes: everything NEW/SET_SERVICE sends.

    ``persistent`` is the persistence timeout in seconds, or None when not persistent.
    ``netmask`` is the persistence granularity as a prefix length (an IPv4 dotted mask such as
    255.255.255.0 is /24); None means the full length and is normalised to it.
    """

    key: ServiceKey
    scheduler: str = "wlc"
    flags: SchedFlags = SchedFlags.NONE
    persistent: int | None = None
    netmask: int | None = None
    pe_name: str | None = None
    stats: Stats | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        family = self.key.family
        if self.netmask is None:
            object.__setattr__(self, "netmask", family.max_prefix)
        if self.persistent is not None and self.persistent < 0:
            raise ValueError(f"{self.key}: negative persistence timeout {self.persistent}")

    @property
    def prefix(self) -> int:
        """The persistence netmask as a prefix length (never None after construction)."""
        return self.netmask if self.netmask is not None else self.key.family.max_prefix


@dataclass(frozen=True, slots=True)
class DestKey:
    """A destination inside a service: real server address and port."""

    address: IPAddress
    port: int
    # Keys index every table map; an address hashes by formatting itself, so once is enough.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.address, self.port)))

    def __hash__(self) -> int:
        return self._hash

    @property
    def sort_key(self) -> tuple[int, int, int]:
        """A total order over destinations of mixed families."""
        return (self.address.version, int(self.address), self.port)

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Dest:
    """A real server as IPVS knows it. Weight 0 is quiescent: no new connections."""

    address: IPAddress
    port: int
    forward: Forward = Forward.GATE
    weight: int = 1
    upper: int = 0  # u:N, upper connection threshold; 0 = none
    lower: int = 0  # l:N, lower connection threshold
    counters: DestCounters | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Weight is a signed int in the kernel (a negative one is refused there with ERANGE);
        # port and thresholds have no negative encoding at all, so refuse them here.
        if not 0 <= self.port <= 65535:
            raise ValueError(f"real {self.address}: port {self.port} out of range 0..65535")
        for name, value in (("u:", self.upper), ("l:", self.lower)):
            if not 0 <= value < 2**32:
                raise ValueError(f"real {self.address}: threshold {name}{value} out of range")
        if not -(2**31) <= self.weight < 2**31:
            raise ValueError(f"real {self.address}: weight {self.weight} out of range")

    @property
    def key(self) -> DestKey:
        """The part of a destination that identifies it within its service."""
        return DestKey(self.address, self.port)


@dataclass(frozen=True, slots=True)
class ForeignService:
    """A kernel service ldirector cannot represent (an unknown family or protocol, a missing
    attribute or one of the wrong size), kept opaque outside `IpvsTable.services`: the rest of
    the table stays readable, and ldirector never changes what it cannot read.

    ``key`` is its identity when that much was readable (it may be an owned key), else None;
    ``raw`` is the service attribute as the kernel sent it.
    """

    key: ServiceKey | None
    reason: str
    raw: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ForeignDest:
    """A destination ldirector cannot represent (a forwarding method it does not know, an
    attribute of the wrong size), kept opaque beside its service's readable destinations."""

    key: DestKey | None
    reason: str
    raw: bytes = field(repr=False)


def _foreign_order(entry: ForeignService | ForeignDest) -> tuple[int, tuple[int, ...], bytes]:
    # Sorted so that equality does not depend on the order the kernel listed them in.
    if entry.key is None:
        return (1, (), entry.raw)
    return (0, entry.key.sort_key, entry.raw)


@dataclass(frozen=True, slots=True)
class VirtualService:
    """A service together with its destinations, keyed by address and port.

    ``foreign`` holds the destinations ldirector cannot represent; they are never in ``dests``.
    """

    service: Service
    dests: Mapping[DestKey, Dest] = field(default_factory=lambda: MappingProxyType({}))
    foreign: tuple[ForeignDest, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "foreign", tuple(sorted(self.foreign, key=_foreign_order)))

    @classmethod
    def of(
        cls, service: Service, dests: Iterable[Dest] = (), foreign: Iterable[ForeignDest] = ()
    ) -> VirtualService:
        """Build from a service and its destinations; a duplicate destination is a ValueError."""
        table: dict[DestKey, Dest] = {}
        for dest in dests:
            if dest.key in table:
                raise ValueError(f"{service.key}: duplicate destination {dest.key}")
            table[dest.key] = dest
        return cls(service, MappingProxyType(table), tuple(foreign))

    @property
    def key(self) -> ServiceKey:
        """Key of the service."""
        return self.service.key


@dataclass(frozen=True, slots=True)
class IpvsTable:
    """A whole IPVS table (or the part of it one party cares about), keyed by service key.

    ``foreign`` holds the services ldirector cannot represent, never in ``services``, so code
    that walks the services cannot mistake one for its own.
    """

    services: Mapping[ServiceKey, VirtualService] = field(
        default_factory=lambda: MappingProxyType({})
    )
    foreign: tuple[ForeignService, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "foreign", tuple(sorted(self.foreign, key=_foreign_order)))

    @classmethod
    def of(cls, *services: VirtualService, foreign: Iterable[ForeignService] = ()) -> IpvsTable:
        """Build from virtual services; a duplicate service key is a ValueError."""
        table: dict[ServiceKey, VirtualService] = {}
        for vs in services:
            if vs.key in table:
                raise ValueError(f"duplicate service {vs.key}")
            table[vs.key] = vs
        return cls(MappingProxyType(table), tuple(foreign))

    def __iter__(self) -> Iterator[VirtualService]:
        return iter(sorted(self.services.values(), key=lambda vs: vs.key.sort_key))

    def __len__(self) -> int:
        return len(self.services)

    def __contains__(self, key: object) -> bool:
        return key in self.services

    def __getitem__(self, key: ServiceKey) -> VirtualService:
        return self.services[key]

    def only(self, keys: Iterable[ServiceKey]) -> IpvsTable:
        """The sub-table holding just these services (absent keys are ignored)."""
        wanted = set(keys)
        return IpvsTable(
            MappingProxyType({k: v for k, v in self.services.items() if k in wanted}),
            tuple(f for f in self.foreign if f.key in wanted),
        )

    def without(self, keys: Iterable[ServiceKey]) -> IpvsTable:
        """The sub-table holding every service except these."""
        unwanted = set(keys)
        return IpvsTable(
            MappingProxyType({k: v for k, v in self.services.items() if k not in unwanted}),
            tuple(f for f in self.foreign if f.key not in unwanted),
        )
