"""Kernel replies as typed values, one entry at a time, so a hostile table stays readable.

Another tool can put entries in the IPVS table that ldirector cannot represent: a forwarding
method it does not know, an address family from a newer kernel, an attribute of the wrong size.
Each such entry becomes a `ForeignService` or `ForeignDest` holding its raw bytes, and the
entries around it decode as usual. Only a reply whose framing is broken (`genl.messages`) is
unreadable as a whole. A dump can also list an entry twice when the table changes while it is
read; `assemble` keeps the last copy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType

from ldirector.ipvs import genl
from ldirector.ipvs.backend import MalformedReply
from ldirector.ipvs.layout import Layouts
from ldirector.ipvs.sync import DEFAULT_GROUP, DEFAULT_PORT, DaemonState, SyncDaemon
from ldirector.ipvs.types import (
    FLAG_PERSISTENT,
    Dest,
    DestCounters,
    DestKey,
    Family,
    ForeignDest,
    ForeignService,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IPAddress,
    IpvsTable,
    Protocol,
    SchedFlags,
    Service,
    ServiceKey,
    Stats,
    VirtualService,
)

_STATS_FIELDS = (
    "conns",
    "in_packets",
    "out_packets",
    "in_bytes",
    "out_bytes",
    "cps",
    "in_pps",
    "out_pps",
    "in_bps",
    "out_bps",
)
_USER_FLAGS = SchedFlags.ONEPACKET | SchedFlags.SCHED1 | SchedFlags.SCHED2 | SchedFlags.SCHED3
#: IP_VS_CONN_F_FWD_MASK: the forwarding method is the low three bits of a destination's flags.
_FWD_MASK = 0x7

Attrs = dict[int, memoryview]


class Unreadable(ValueError):
    """One attribute of an entry is missing, of the wrong size, or holds an unknown value."""


def _raw(found: Attrs, kind: int, what: str) -> memoryview:
    raw = found.get(kind)
    if raw is None:
        raise Unreadable(f"no {what} attribute")
    return raw


def _uint(found: Attrs, kind: int, what: str, size: int, default: int | None = None) -> int:
    if default is not None and kind not in found:
        return default
    raw = _raw(found, kind, what)
    if len(raw) != size:
        raise Unreadable(f"{what} attribute is {len(raw)} bytes, not {size}")
    return int.from_bytes(raw, sys.byteorder)


def _be16(found: Attrs, kind: int, what: str) -> int:
    raw = _raw(found, kind, what)
    if len(raw) != 2:
        raise Unreadable(f"{what} attribute is {len(raw)} bytes, not 2")
    return int.from_bytes(raw, "big")


def _family(value: int) -> Family:
    try:
        return Family(value)
    except ValueError:
        raise Unreadable(f"unknown address family {value}") from None


def _address(found: Attrs, kind: int, family: Family) -> IPAddress:
    # The kernel sends a 16-byte union for either family; the address is its first bytes.
    raw = _raw(found, kind, "address")
    size = 4 if family is Family.INET else 16
    if len(raw) < size:
        raise Unreadable(f"address attribute is {len(raw)} bytes, too short for {family.name}")
    return IPv4Address(bytes(raw[:4])) if size == 4 else IPv6Address(bytes(raw[:16]))


def _text(raw: memoryview) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("ascii", "replace")


def _stats(found: Attrs, v32: int, v64: int) -> Stats | None:
    # Counters never decide what ldirector does, so odd ones are dropped, not the entry.
    raw = found.get(v64) or found.get(v32)
    if raw is None:
        return Stats()
    try:
        fields = genl.attrs(raw)
        values: dict[str, int] = {}
        for kind, name in enumerate(_STATS_FIELDS, start=1):
            value = fields.get(kind)
            if value is not None and len(value) not in (4, 8):
                return None
            values[name] = int.from_bytes(value, sys.byteorder) if value is not None else 0
    except MalformedReply:
        return None
    return Stats(**values)


def _entry(payload: memoryview, nest: int, what: str) -> tuple[Attrs, bytes]:
    """The attributes inside one reply's ``nest`` attribute, and that attribute's raw bytes."""
    top = genl.genl_attrs(payload)
    if nest not in top:
        raise Unreadable(f"no {what} attribute")
    raw = top[nest]
    return genl.attrs(raw), bytes(raw)


def service(payload: memoryview) -> Service | ForeignService:
    """One GET_SERVICE reply as a Service (with stats), or as a ForeignService."""
    raw, key = bytes(payload), None
    try:
        found, raw = _entry(payload, genl.CMD_ATTR_SERVICE, "service")
        key = _service_key(found)
        return _service(found, key)
    except (Unreadable, MalformedReply, ValueError) as exc:
        return ForeignService(key, str(exc), raw)


def _service_key(found: Attrs) -> ServiceKey:
    family = _family(_uint(found, genl.SVC_AF, "family", 2))
    mark = _uint(found, genl.SVC_FWMARK, "firewall mark", 4, default=0)
    if mark:
        return FwmarkServiceKey(family, mark)
    number = _uint(found, genl.SVC_PROTOCOL, "protocol", 2)
    try:
        protocol = Protocol(number)
    except ValueError:
        raise Unreadable(f"unknown protocol {number}") from None
    address = _address(found, genl.SVC_ADDR, family)
    return InetServiceKey(protocol, address, _be16(found, genl.SVC_PORT, "port"))


def _service(found: Attrs, key: ServiceKey) -> Service:
    flags_raw = _raw(found, genl.SVC_FLAGS, "flags")
    if len(flags_raw) != 8:
        raise Unreadable(f"flags attribute is {len(flags_raw)} bytes, not 8")
    flags = int.from_bytes(flags_raw[:4], sys.byteorder)
    pe = found.get(genl.SVC_PE_NAME)
    timeout = _uint(found, genl.SVC_TIMEOUT, "timeout", 4, default=0)
    return Service(
        key=key,
        scheduler=_text(_raw(found, genl.SVC_SCHED_NAME, "scheduler")),
        # Unknown flag bits are not ldirector's to keep or clear; only the chosen ones count.
        flags=SchedFlags(flags & _USER_FLAGS),
        persistent=timeout if flags & FLAG_PERSISTENT else None,
        netmask=_prefix(_uint(found, genl.SVC_NETMASK, "netmask", 4), key.family),
        pe_name=_text(pe) if pe is not None else None,
        stats=_stats(found, genl.SVC_STATS, genl.SVC_STATS64),
    )


def _prefix(raw: int, family: Family) -> int:
    if family is Family.INET6:
        return raw  # already a prefix length, in host order
    mask = int.from_bytes(raw.to_bytes(4, sys.byteorder), "big")
    # A non-contiguous mask (only settable by other tools) is read as its leading ones.
    return 32 - (~mask & 0xFFFFFFFF).bit_length() if mask != 0xFFFFFFFF else 32


#: The layouts of the replies read so far, shared by every dump (`ldirector.ipvs.layout`).
_LAYOUTS = Layouts()


def dest(payload: memoryview, family: Family) -> Dest | ForeignDest:
    """One GET_DEST reply as a Dest (with counters), or as a ForeignDest; ``family`` is its
    service's, which a kernel without per-destination families implies."""
    fast = _LAYOUTS.read(payload, family)
    if fast is not None:
        return fast
    walked = walk_dest(payload, family)
    if isinstance(walked, Dest):
        _LAYOUTS.learn(payload, family, walked)
    return walked


def walk_dest(payload: memoryview, family: Family) -> Dest | ForeignDest:
    """`dest` read attribute by attribute: the reference the learned layouts must agree with."""
    raw, key = bytes(payload), None
    try:
        found, raw = _entry(payload, genl.CMD_ATTR_DEST, "destination")
        af = _family(_uint(found, genl.DEST_AF, "family", 2, default=family))
        key = DestKey(_address(found, genl.DEST_ADDR, af), _be16(found, genl.DEST_PORT, "port"))
        method = _uint(found, genl.DEST_FWD, "forwarding method", 4) & _FWD_MASK
        try:
            forward = Forward(method)
        except ValueError:
            raise Unreadable(f"unknown forwarding method {method}") from None
        weight = _uint(found, genl.DEST_WEIGHT, "weight", 4)
        return Dest(
            address=key.address,
            port=key.port,
            forward=forward,
            weight=weight - (1 << 32) if weight >= 1 << 31 else weight,
            upper=_uint(found, genl.DEST_U_THRESH, "upper threshold", 4, default=0),
            lower=_uint(found, genl.DEST_L_THRESH, "lower threshold", 4, default=0),
            counters=_counters(found),
        )
    except (Unreadable, MalformedReply, ValueError) as exc:
        return ForeignDest(key, str(exc), raw)


def _counters(found: Attrs) -> DestCounters | None:
    stats = _stats(found, genl.DEST_STATS, genl.DEST_STATS64)
    try:
        return DestCounters(
            active_conns=_uint(found, genl.DEST_ACTIVE, "active", 4, default=0),
            inactive_conns=_uint(found, genl.DEST_INACT, "inactive", 4, default=0),
            persist_conns=_uint(found, genl.DEST_PERSIST, "persistent", 4, default=0),
            stats=stats if stats is not None else Stats(),
        )
    except Unreadable:
        return None


def daemon(payload: memoryview) -> SyncDaemon:
    """One GET_DAEMON reply. Kernels before 4.3 send only role, interface and sync id."""
    try:
        found, _ = _entry(payload, genl.CMD_ATTR_DAEMON, "sync daemon")
        group: IPAddress = DEFAULT_GROUP
        if genl.DAEMON_MCAST_GROUP6 in found:
            group = _address(found, genl.DAEMON_MCAST_GROUP6, Family.INET6)
        elif genl.DAEMON_MCAST_GROUP in found:
            group = _address(found, genl.DAEMON_MCAST_GROUP, Family.INET)
        maxlen = _uint(found, genl.DAEMON_SYNC_MAXLEN, "maxlen", 2, default=0)
        return SyncDaemon(
            state=DaemonState(_uint(found, genl.DAEMON_STATE, "state", 4)),
            interface=_text(_raw(found, genl.DAEMON_MCAST_IFN, "interface")),
            syncid=_uint(found, genl.DAEMON_SYNC_ID, "sync id", 4),
            maxlen=maxlen or None,
            group=group,
            port=_uint(found, genl.DAEMON_MCAST_PORT, "port", 2, default=DEFAULT_PORT),
            ttl=_uint(found, genl.DAEMON_MCAST_TTL, "ttl", 1, default=1),
        )
    except (Unreadable, MalformedReply, ValueError) as exc:
        raise MalformedReply(
            f"the kernel reported a sync daemon ldirector cannot read: {exc}"
        ) from None


Entry = tuple[Service | ForeignService, Sequence[Dest | ForeignDest]]


def assemble(entries: Iterable[Entry]) -> tuple[IpvsTable, list[str]]:
    """The table from decoded (service, destinations) pairs, and one note per entry that is
    foreign or was listed twice, for the caller to log."""
    services: dict[ServiceKey, VirtualService | ForeignService] = {}
    unkeyed: dict[bytes, ForeignService] = {}
    notes: list[str] = []
    for svc, dests in entries:
        entry: VirtualService | ForeignService
        if isinstance(svc, ForeignService):
            notes.append(_unreadable(f"service {_name(svc.key)}", svc.reason))
            if svc.key is None:
                unkeyed[svc.raw] = svc
                continue
            key, entry = svc.key, svc
        else:
            key, entry = svc.key, _virtual(svc, dests, notes)
        if key in services:
            notes.append(_twice(f"service {key}"))
        services[key] = entry
    readable = {k: v for k, v in services.items() if isinstance(v, VirtualService)}
    foreign = [v for v in services.values() if isinstance(v, ForeignService)]
    return IpvsTable(MappingProxyType(readable), (*foreign, *unkeyed.values())), notes


def _virtual(svc: Service, dests: Iterable[Dest | ForeignDest], notes: list[str]) -> VirtualService:
    known: dict[DestKey, Dest | ForeignDest] = {}
    unkeyed: dict[bytes, ForeignDest] = {}
    for entry in dests:
        where = f"real {_name(entry.key)} of {svc.key}"
        if isinstance(entry, ForeignDest):
            notes.append(_unreadable(where, entry.reason))
            if entry.key is None:
                unkeyed[entry.raw] = entry
                continue
            key = entry.key
        else:
            key = entry.key
        if key in known:
            notes.append(_twice(where))
        known[key] = entry
    readable = {k: d for k, d in known.items() if isinstance(d, Dest)}
    foreign = [d for d in known.values() if isinstance(d, ForeignDest)]
    return VirtualService(svc, MappingProxyType(readable), (*foreign, *unkeyed.values()))


def _twice(what: str) -> str:
    # A dump is read in parts; a change between two parts can list one entry twice.
    return f"IPVS {what} was listed twice while the table changed; the last copy is kept"


def _name(key: ServiceKey | DestKey | None) -> str:
    return str(key) if key is not None else "(address unreadable)"


def _unreadable(what: str, reason: str) -> str:
    return f"IPVS {what} cannot be read by ldirector ({reason}); it is left as it is"
