"""Wire codec for the kernel's IPVS generic-netlink family: requests to bytes, replies to parts.

Pure and hand-packed with `struct`: pyroute2's generic encoder costs ~400 µs per message, which
alone would make a 10,000-op batch slower than ``ipvsadm -R``. `decode.py` turns the parts of a
reply into typed values; `netlink.py` does the socket I/O. Attribute numbers and layouts follow
``include/uapi/linux/ip_vs.h``. A reply whose framing is broken raises `MalformedReply`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Final, assert_never

from ldirector.ipvs.backend import MalformedReply
from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import (
    FLAG_PERSISTENT,
    Dest,
    DestKey,
    Family,
    FwmarkServiceKey,
    InetServiceKey,
    IPAddress,
    Service,
    ServiceKey,
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
CMD_NEW_DAEMON, CMD_DEL_DAEMON, CMD_GET_DAEMON = 9, 10, 11
CMD_ATTR_SERVICE, CMD_ATTR_DEST, CMD_ATTR_DAEMON = 1, 2, 3
SVC_AF, SVC_PROTOCOL, SVC_ADDR, SVC_PORT, SVC_FWMARK = 1, 2, 3, 4, 5
SVC_SCHED_NAME, SVC_FLAGS, SVC_TIMEOUT, SVC_NETMASK, SVC_STATS = 6, 7, 8, 9, 10
SVC_PE_NAME, SVC_STATS64 = 11, 12
DEST_ADDR, DEST_PORT, DEST_FWD, DEST_WEIGHT, DEST_U_THRESH, DEST_L_THRESH = 1, 2, 3, 4, 5, 6
DEST_ACTIVE, DEST_INACT, DEST_PERSIST, DEST_STATS, DEST_AF, DEST_STATS64 = 7, 8, 9, 10, 11, 12
DAEMON_STATE, DAEMON_MCAST_IFN, DAEMON_SYNC_ID, DAEMON_SYNC_MAXLEN = 1, 2, 3, 4
DAEMON_MCAST_GROUP, DAEMON_MCAST_GROUP6, DAEMON_MCAST_PORT, DAEMON_MCAST_TTL = 5, 6, 7, 8

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
_GENL = struct.Struct("=BBH")  # genlmsghdr: cmd, version, reserved
_NLA = struct.Struct("=HH")  # nlattr: len, type
_U16 = struct.Struct("=H")
_BE16 = struct.Struct("!H")
_U32 = struct.Struct("=I")
_I32 = struct.Struct("=i")
_BE32 = struct.Struct("!I")
_FLAGS = struct.Struct("=II")


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


def start_daemon_request(family: int, seq: int, daemon: SyncDaemon) -> bytes:
    """NEW_DAEMON with every setting; the group, port and TTL attributes exist since Linux 4.3."""
    group = (
        nla(DAEMON_MCAST_GROUP, daemon.group.packed)
        if daemon.group.version == 4
        else nla(DAEMON_MCAST_GROUP6, daemon.group.packed)
    )
    attrs = (
        nla(DAEMON_STATE, _U32.pack(daemon.state))
        + nla(DAEMON_MCAST_IFN, daemon.interface.encode() + b"\0")
        + nla(DAEMON_SYNC_ID, _U32.pack(daemon.syncid))
        + group
        + nla(DAEMON_MCAST_PORT, _U16.pack(daemon.port))
        + nla(DAEMON_MCAST_TTL, struct.pack("=B", daemon.ttl))
    )
    if daemon.maxlen is not None:
        attrs += nla(DAEMON_SYNC_MAXLEN, _U16.pack(daemon.maxlen))
    flags = NLM_F_REQUEST | NLM_F_ACK
    return message(family, flags, seq, CMD_NEW_DAEMON, nla(CMD_ATTR_DAEMON, attrs))


def stop_daemon_request(family: int, seq: int, state: DaemonState) -> bytes:
    """DEL_DAEMON: the kernel needs only the role to stop."""
    attrs = nla(CMD_ATTR_DAEMON, nla(DAEMON_STATE, _U32.pack(state)))
    return message(family, NLM_F_REQUEST | NLM_F_ACK, seq, CMD_DEL_DAEMON, attrs)


def dump_daemons_request(family: int, seq: int) -> bytes:
    """GET_DAEMON, which the kernel answers only as a dump: one message per running daemon."""
    return message(family, NLM_F_REQUEST | NLM_F_DUMP, seq, CMD_GET_DAEMON, b"")


# Splitting replies


def messages(buf: bytes | bytearray | memoryview) -> Iterator[tuple[int, int, int, memoryview]]:
    """Split a receive buffer into (type, flags, seq, payload) per netlink message.

    A message that claims more bytes than arrived loses the framing of everything after it, so
    it raises MalformedReply instead of being skipped.
    """
    view = memoryview(buf)
    offset = 0
    while offset < len(view):
        size = _HDR.unpack_from(view, offset)[0] if offset + _HDR.size <= len(view) else 0
        if size < _HDR.size or offset + size > len(view):
            raise MalformedReply(
                f"malformed reply from the kernel: truncated netlink message "
                f"({len(view) - offset} bytes at offset {offset}, header says {size})"
            )
        _, kind, flags, seq, _ = _HDR.unpack_from(view, offset)
        yield kind, flags, seq, view[offset + _HDR.size : offset + size]
        offset += (size + 3) & ~3


def error_code(payload: memoryview) -> int:
    """The positive errno of an NLMSG_ERROR payload (0 means success: an ack)."""
    if len(payload) < _I32.size:
        raise MalformedReply("malformed reply from the kernel: an error message without its code")
    (code,) = _I32.unpack_from(payload, 0)
    return -int(code)


def attrs(payload: memoryview, offset: int = 0) -> dict[int, memoryview]:
    """Attributes by type (nested/byte-order flag bits stripped); later duplicates win.

    An attribute whose length runs past its container raises MalformedReply; a tail too short
    to hold an attribute header is ignored, as the kernel's own parser does.
    """
    found: dict[int, memoryview] = {}
    while offset + _NLA.size <= len(payload):
        size, kind = _NLA.unpack_from(payload, offset)
        if size < _NLA.size or offset + size > len(payload):
            left = len(payload) - offset
            raise MalformedReply(f"attribute {kind & 0x3FFF} claims {size} bytes, {left} remain")
        found[kind & 0x3FFF] = payload[offset + _NLA.size : offset + size]
        offset += (size + 3) & ~3
    return found


def genl_attrs(payload: memoryview) -> dict[int, memoryview]:
    """Top-level attributes of a generic-netlink message payload (after its 4-byte header)."""
    if len(payload) < _GENL.size:
        raise MalformedReply("a generic-netlink message without its header")
    return attrs(payload, _GENL.size)


def family_id(payload: memoryview) -> int:
    """The family id in a CTRL_CMD_NEWFAMILY reply."""
    raw = genl_attrs(payload).get(CTRL_ATTR_FAMILY_ID)
    if raw is None or len(raw) != _U16.size:
        raise MalformedReply("malformed reply from the kernel: no generic-netlink family id")
    return int(_U16.unpack(raw)[0])
