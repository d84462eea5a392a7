"""Wire codec for the kernel's IPVS generic-netlink family: ops to bytes, dump replies to types.

Pure and hand-packed with `struct`: pyroute2's generic encoder costs ~400 µs per message, which
alone would make a 10,000-op batch slower than ``ipvsadm -R``. `netlink.py` does the socket I/O.
Attribute numbers and layouts follow ``include/uapi/linux/ip_vs.h``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from ipaddress import IPv4Address, IPv6Address
from typing import Final, assert_never

from ldirector.ipvs.types import (
    FLAG_PERSISTENT,
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    DestCounters,
    DestKey,
    EditDest,
    EditService,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IPAddress,
    Op,
    Protocol,
    SchedFlags,
    Service,
    ServiceKey,
    Stats,
)

# netlink
NLMSG_ERROR: Final = 2
NLMSG_DONE: Final = 3
NLM_F_REQUEST: Final = 0x1
NLM_F_MULTI: Final = 0x2
NLM_F_ACK: Final = 0x4
NLM_F_DUMP: Final = 0x300
GENL_ID_CTRL: Final = 0x10
CTRL_CMD_GETFAMILY: Final = 3
CTRL_ATTR_FAMILY_ID: Final = 1
CTRL_ATTR_FAMILY_NAME: Final = 2

# IPVS commands and attributes
CMD_NEW_SERVICE, CMD_SET_SERVICE, CMD_DEL_SERVICE, CMD_GET_SERVICE = 1, 2, 3, 4
CMD_NEW_DEST, CMD_SET_DEST, CMD_DEL_DEST, CMD_GET_DEST = 5, 6, 7, 8
CMD_ATTR_SERVICE, CMD_ATTR_DEST = 1, 2
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK = 1, 2, 3, 4, 5
SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK, SVC_STATS = 6, 7, 8, 9, 10
SVC_PE_NAME, SVC_STATS64 = 11, 12
DEST_ADDR, DEST_PORT, DEST_FWD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH = 1, 2, 3, 4, 5, 6
DEST_ACTIVE, DEST_INACT, DEST_PERSIST, DEST_STATS, DEST_AF, DEST_STATS64 = 7, 8, 9, 10, 11, 12

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_GENL = struct.Struct("=BBH")  # genlmsghdr: cmd, version, reserved
_NLA = struct.Struct("=HH")  # nlattr: len, type
_U16 = struct.Struct("=H")
_BE16 = struct.Struct("!H")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_BE32 = struct.Struct("!I")
_U64 = struct.Struct("=Q")
_FLAGS = struct.Struct("=II")
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


def nla(kind: int, payload: bytes) -> bytes:
    """One netlink attribute, padded to 4 bytes."""
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size % 4)


def message(family: int, flags: int, seq: int, cmd: int, attrs: bytes) -> bytes:
    """One generic-netlink request (version 1, as IPVS expects)."""
    size = _HDR.size + _GENL.size + len(attrs)
    return _HDR.pack(size, family, flags, seq, 0) + _GENL.pack(cmd, 1, 0) + attrs


def getfamily_request(name: str, seq: int) -> bytes:
    """Ask the generic-netlink controller for a family's id (this also autoloads ip_vs)."""
    attrs = nla(CTRL_ATTR_FAMILY_NAME, name.encode() + b"\0")
    return message(GENL_ID_CTRL, NLM_F_REQUEST, seq, CTRL_CMD_GETFAMILY, attrs)


def _addr(address: IPAddress) -> bytes:
    return nla(SVC_ADDR, address.packed)


def encode_service_key(key: ServiceKey) -> bytes:
    """The attributes that select a service (the kernel sets protocol TCP for fwmarks)."""
    match key:
        case InetServiceKey(protocol=proto, address=address, port=port):
            return (
                nla(SVC_AF, _U16.pack(key.family))
                + nla(SVC_PROTOCOL, _U16.pack(proto))
                + _addr(address)
                + nla(SVC_PORT, _BE16.pack(port))
            )
        case FwmarkServiceKey(family=family, fwmark=mark):
            return nla(SVC_AF, _U16.pack(family)) + nla(SVC_FWMARK, _U32.pack(mark))
        case _:
            assert_never(key)


def encode_service(svc: Service) -> bytes:
    """Every attribute NEW/SET_SERVICE needs; the kernel refuses a partial set with EINVAL."""
    flags = int(svc.flags) | (FLAG_PERSISTENT if svc.persistent is not None else 0)
    if svc.key.family is Family.INET:
        netmask = _BE32.pack((0xFFFFFFFF << (32 - svc.prefix)) & 0xFFFFFFFF)
    else:
        # For IPv6 the kernel reads this attribute's raw bytes as a host-order prefix length.
        netmask = _U32.pack(svc.prefix)
    attrs = (
        encode_service_key(svc.key)
        + nla(SVC_SCHED_NAME, svc.scheduler.encode() + b"\0")
        + nla(SVC_FLAGS, _FLAGS.pack(flags, 0xFFFFFFFF))
        + nla(SVC_TIMEOUT, _U32.pack(svc.persistent or 0))
        + nla(SVC_NETMASK, netmask)
    )
    if svc.pe_name:
        attrs += nla(SVC_PE_NAME, svc.pe_name.encode() + b"\0")
    return attrs


def encode_dest_key(dkey: DestKey) -> bytes:
    """The attributes that select a destination inside its service."""
    return (
        nla(DEST_ADDR, dkey.address.packed)
        + nla(DEST_PORT, _BE16.pack(dkey.port))
        + nla(DEST_AF, _U16.pack(Family.INET if dkey.address.version == 4 else Family.INET6))
    )


def encode_dest(dest: Dest) -> bytes:
    """Every attribute NEW/SET_DEST needs (SET_DEST is a full replace)."""
    return (
        encode_dest_key(dest.key)
        + nla(DEST_FWD, _U32.pack(dest.forward))
        + nla(DEST_WEIGHT, _I32.pack(dest.weight))
        + nla(DEST_U_THRESH, _U32.pack(dest.upper))
        + nla(DEST_L_THRESH, _U32.pack(dest.lower))
    )


def encode_op(op: Op, family: int, seq: int, flags: int = NLM_F_REQUEST) -> bytes:
    """One op as one request message."""
    match op:
        case AddService(service=svc):
            cmd, attrs = CMD_NEW_SERVICE, nla(CMD_ATTR_SERVICE, encode_service(svc))
        case EditService(service=svc):
            cmd, attrs = CMD_SET_SERVICE, nla(CMD_ATTR_SERVICE, encode_service(svc))
        case DelService(key=key):
            cmd, attrs = CMD_DEL_SERVICE, nla(CMD_ATTR_SERVICE, encode_service_key(key))
        case AddDest(service=key, dest=dest) | EditDest(service=key, dest=dest):
            cmd = CMD_NEW_DEST if isinstance(op, AddDest) else CMD_SET_DEST
            attrs = nla(CMD_ATTR_SERVICE, encode_service_key(key)) + nla(
                CMD_ATTR_DEST, encode_dest(dest)
            )
        case DelDest(service=key, dest=dkey):
            cmd = CMD_DEL_DEST
            attrs = nla(CMD_ATTR_SERVICE, encode_service_key(key)) + nla(
                CMD_ATTR_DEST, encode_dest_key(dkey)
            )
        case _:
            assert_never(op)
    return message(family, flags, seq, cmd, attrs)


def dump_services_request(family: int, seq: int) -> bytes:
    """GET_SERVICE as a dump: every service in this network namespace."""
    return message(family, NLM_F_REQUEST | NLM_F_DUMP, seq, CMD_GET_SERVICE, b"")


def dump_dests_request(family: int, seq: int, key: ServiceKey) -> bytes:
    """GET_DEST as a dump (the kernel has no single-dest get): one service's destinations."""
    attrs = nla(CMD_ATTR_SERVICE, encode_service_key(key))
    return message(family, NLM_F_REQUEST | NLM_F_DUMP, seq, CMD_GET_DEST, attrs)


# Decoding


def messages(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, int, int, memoryview]]:
    """Split a receive buffer into (type, flags, seq, payload) per netlink message."""
    view = memoryview(buf)
    offset = 0
    while offset + _HDR.size <= len(view):
        size, kind, flags, seq, _ = _HDR.unpack_from(view, offset)
        if size < _HDR.size or offset + size > len(view):
            raise ValueError(f"truncated netlink message ({size} bytes at offset {offset})")
        yield kind, flags, seq, view[offset + _HDR.size : offset + size]
        offset += (size + 3) & ~3


def error_code(payload: memoryview) -> int:
    """The positive errno of an NLMSG_ERROR payload (0 means success: an ack)."""
    (code,) = _I32.unpack_from(payload, 0)
    return -int(code)


def attrs(payload: memoryview, offset: int = 0) -> dict[int, memoryview]:
    """Attributes by type (nested/byte-order flag bits stripped); later duplicates win."""
    found: dict[int, memoryview] = {}
    while offset + _NLA.size <= len(payload):
        size, kind = _NLA.unpack_from(payload, offset)
        if size < _NLA.size:
            break
        found[kind & 0x3FFF] = payload[offset + _NLA.size : offset + size]
        offset += (size + 3) & ~3
    return found


def genl_attrs(payload: memoryview) -> dict[int, memoryview]:
    """Top-level attributes of a generic-netlink message payload (after its 4-byte header)."""
    return attrs(payload, _GENL.size)


def family_id(payload: memoryview) -> int:
    """The family id in a CTRL_CMD_NEWFAMILY reply."""
    return int(_U16.unpack_from(genl_attrs(payload)[CTRL_ATTR_FAMILY_ID])[0])


def _int(raw: memoryview | None) -> int:
    if raw is None:
        return 0
    fmt = {1: "=B", 2: "=H", 4: "=I", 8: "=Q"}[len(raw)]
    return int(struct.unpack(fmt, raw)[0])


def _stats(parent: dict[int, memoryview], v32: int, v64: int) -> Stats:
    raw = parent.get(v64) or parent.get(v32)
    if raw is None:
        return Stats()
    found = attrs(raw)
    values = {name: _int(found.get(i)) for i, name in enumerate(_STATS_FIELDS, start=1)}
    return Stats(**values)


def _address(raw: memoryview, family: int) -> IPAddress:
    if family == Family.INET:
        return IPv4Address(bytes(raw[:4]))
    return IPv6Address(bytes(raw[:16]))


def _prefix(raw: memoryview, family: Family) -> int:
    if family is Family.INET6:
        return _int(raw)
    mask = _BE32.unpack(raw)[0]
    # A non-contiguous mask (only settable by other tools) is read as its leading ones.
    return 32 - (~mask & 0xFFFFFFFF).bit_length() if mask != 0xFFFFFFFF else 32


def decode_service(payload: memoryview) -> Service:
    """A GET_SERVICE reply as a Service (with stats)."""
    svc = attrs(genl_attrs(payload)[CMD_ATTR_SERVICE])
    family = Family(_int(svc[SVC_AF]))
    mark = _int(svc.get(SVC_FWMARK))
    key: ServiceKey
    if mark:
        key = FwmarkServiceKey(family, mark)
    else:
        address = _address(svc[SVC_ADDR], family)
        key = InetServiceKey(Protocol(_int(svc[SVC_PROTOCOL])), address, _port(svc[SVC_PORT]))
    flags = _FLAGS.unpack(svc[SVC_FLAGS])[0]
    pe = svc.get(SVC_PE_NAME)
    return Service(
        key=key,
        scheduler=_text(svc[SVC_SCHED_NAME]),
        flags=SchedFlags(
            flags
            & (SchedFlags.ONEPACKET | SchedFlags.SCHED1 | SchedFlags.SCHED2 | SchedFlags.SCHED3)
        ),
        persistent=_int(svc.get(SVC_TIMEOUT)) if flags & FLAG_PERSISTENT else None,
        netmask=_prefix(svc[SVC_NETMASK], family),
        pe_name=_text(pe) if pe is not None else None,
        stats=_stats(svc, SVC_STATS, SVC_STATS64),
    )


def decode_dest(payload: memoryview, family: Family) -> Dest:
    """A GET_DEST reply as a Dest (with counters); ``family`` is its service's."""
    dest = attrs(genl_attrs(payload)[CMD_ATTR_DEST])
    af = _int(dest[DEST_AF]) if DEST_AF in dest else family
    return Dest(
        address=_address(dest[DEST_ADDR], af),
        port=_port(dest[DEST_PORT]),
        forward=Forward(_int(dest[DEST_FWD]) & 0x7),
        weight=_I32.unpack(dest[DEST_WEIGHT])[0],
        upper=_int(dest.get(DEST_U_THRESH)),
        lower=_int(dest.get(DEST_L_THRESH)),
        counters=DestCounters(
            active_conns=_int(dest.get(DEST_ACTIVE)),
            inactive_conns=_int(dest.get(DEST_INACT)),
            persist_conns=_int(dest.get(DEST_PERSIST)),
            stats=_stats(dest, DEST_STATS, DEST_STATS64),
        ),
    )


def _port(raw: memoryview) -> int:
    return int(_BE16.unpack(raw)[0])


def _text(raw: memoryview) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode("ascii", "replace")
