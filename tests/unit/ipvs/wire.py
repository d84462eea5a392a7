"""Kernel-side messages for codec tests: well-formed ones from pyroute2's encoder, hostile ones
packed by hand (pyroute2 cannot produce an attribute of the wrong size)."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, ip_address
from typing import Any

from pyroute2.netlink import genlmsg, nla
from pyroute2.netlink.generic.ipvs import ipvsmsg

from ldirector.ipvs import genl

FAMILY = 0x1F  # any generic-netlink family id: the codec never checks it in replies


class daemonmsg(genlmsg):  # type: ignore[misc]
    """pyroute2 leaves the sync-daemon attribute opaque; this is its layout from ip_vs.h."""

    prefix = "IPVS_CMD_ATTR_"
    nla_map = (
        ("IPVS_CMD_ATTR_UNSPEC", "none"),
        ("IPVS_CMD_ATTR_SERVICE", "hex"),
        ("IPVS_CMD_ATTR_DEST", "hex"),
        ("IPVS_CMD_ATTR_DAEMON", "daemon"),
    )

    class daemon(nla):  # type: ignore[misc]
        prefix = "IPVS_DAEMON_ATTR_"
        nla_map = (
            ("IPVS_DAEMON_ATTR_UNSPEC", "none"),
            ("IPVS_DAEMON_ATTR_STATE", "uint32"),
            ("IPVS_DAEMON_ATTR_MCAST_IFN", "asciiz"),
            ("IPVS_DAEMON_ATTR_SYNC_ID", "uint32"),
            ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP", "ip4addr"),
            ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ip6addr"),
            ("IPVS_DAEMON_ATTR_MCAST_PORT", "uint16"),
            ("IPVS_DAEMON_ATTR_MCAST_TTL", "uint8"),
        )


def pyroute2_reply(
    cmd: int, attrs: list[tuple[str, Any]], nest: str, msg_class: Any = ipvsmsg
) -> bytes:
    """A reply as the kernel sends it, built with pyroute2's encoder."""
    msg = msg_class()
    msg["cmd"] = cmd
    msg["version"] = 1
    msg["header"]["type"] = FAMILY
    msg["header"]["flags"] = genl.NLM_F_MULTI
    msg["attrs"] = [(nest, {"attrs": attrs})]
    msg.encode()
    return bytes(msg.data)


def payload(data: bytes) -> memoryview:
    """The generic-netlink payload of one message."""
    ((_, _, _, body),) = genl.messages(data)
    return body


def u16(value: int) -> bytes:
    return struct.pack("=H", value)


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


def addr16(address: str) -> bytes:
    """An IPv4 address the way the kernel sends it: inside a zero-padded 16-byte union."""
    return IPv4Address(address).packed + bytes(12)


def _reply(cmd: int, nest: int, fields: dict[int, bytes | None]) -> bytes:
    body = b"".join(genl.nla(kind, value) for kind, value in fields.items() if value is not None)
    return genl.message(FAMILY, genl.NLM_F_MULTI, 0, cmd, genl.nla(nest, body))


def service_reply(address: str = "127.0.10.1", port: int = 80, /, **changed: bytes | None) -> bytes:
    """A TCP service as the kernel dumps it; ``changed`` replaces (None: drops) attributes
    named by their genl constant without the ``SVC_`` prefix, e.g. ``NETMASK=b"\\xff\\xff"``."""
    fields: dict[int, bytes | None] = {
        genl.SVC_AF: u16(2),
        genl.SVC_PROTOCOL: u16(6),
        genl.SVC_ADDR: addr16(address),
        genl.SVC_PORT: struct.pack("!H", port),
        genl.SVC_SCHED_NAME: b"wlc\0",
        genl.SVC_FLAGS: struct.pack("=II", 0x2, 0xFFFFFFFF),
        genl.SVC_TIMEOUT: u32(0),
        genl.SVC_NETMASK: b"\xff\xff\xff\xff",
    }
    fields.update({getattr(genl, f"SVC_{name}"): value for name, value in changed.items()})
    return _reply(genl.CMD_NEW_SERVICE, genl.CMD_ATTR_SERVICE, fields)


def dest_reply(address: str = "127.0.20.1", port: int = 80, /, **changed: bytes | None) -> bytes:
    """An IPv4 direct-routing real as the kernel dumps it; ``changed`` as for services, with
    the ``DEST_`` prefix left out (``FWD=u32(4)``)."""
    fields: dict[int, bytes | None] = {
        genl.DEST_ADDR: addr16(address),
        genl.DEST_PORT: struct.pack("!H", port),
        genl.DEST_FWD: u32(3),
        genl.DEST_WEIGHT: u32(1),
        genl.DEST_U_THRESH: u32(0),
        genl.DEST_L_THRESH: u32(0),
        genl.DEST_ACTIVE: u32(0),
        genl.DEST_INACT: u32(0),
        genl.DEST_PERSIST: u32(0),
        genl.DEST_AF: u16(2),
    }
    fields.update({getattr(genl, f"DEST_{name}"): value for name, value in changed.items()})
    return _reply(genl.CMD_NEW_DEST, genl.CMD_ATTR_DEST, fields)


def done(seq: int) -> bytes:
    """The message that ends a dump."""
    return struct.pack("=IHHII", 20, genl.NLMSG_DONE, genl.NLM_F_MULTI, seq, 0) + bytes(4)


def error(seq: int, code: int) -> bytes:
    """An NLMSG_ERROR for request ``seq`` (code 0: an ack), with the request header echoed."""
    head = struct.pack("=IHHII", 36, genl.NLMSG_ERROR, 0, seq, 0)
    return head + struct.pack("=i", -code) + struct.pack("=IHHII", 20, FAMILY, 0, seq, 0)


def with_seq(data: bytes, seq: int) -> bytes:
    """``data`` (one message) answering request ``seq``."""
    return data[:8] + struct.pack("=I", seq) + data[12:]


def stats_nest(kind: int, base: int, size: int = 8) -> bytes:
    """A nested stats attribute holding the ten counters ``base + 1`` .. ``base + 10``."""
    fmt = "=Q" if size == 8 else "=I"
    body = b"".join(genl.nla(i, struct.pack(fmt, base + i)) for i in range(1, 11))
    return genl.nla(kind | NESTED, body)


def kernel_dest_attrs(
    address: str = "127.0.20.1", port: int = 80, weight: int = 1, conns: int = 0
) -> list[tuple[int, bytes]]:
    """A masquerading real's attributes in the order and sizes Linux 6.1 sends them: tunnel
    attributes, both stats nests, and the family last."""
    return [
        (genl.DEST_ADDR, ip_address(address).packed.ljust(16, b"\0")),
        (genl.DEST_PORT, struct.pack("!H", port)),
        (genl.DEST_FWD, u32(0)),
        (genl.DEST_WEIGHT, struct.pack("=i", weight)),
        (13, b"\0"),  # IPVS_DEST_ATTR_TUN_TYPE
        (14, b"\0\0"),  # IPVS_DEST_ATTR_TUN_PORT
        (15, b"\0\0"),  # IPVS_DEST_ATTR_TUN_FLAGS
        (genl.DEST_U_THRESH, u32(0)),
        (genl.DEST_L_THRESH, u32(0)),
        (genl.DEST_ACTIVE, u32(conns)),
        (genl.DEST_INACT, u32(2 * conns)),
        (genl.DEST_PERSIST, u32(0)),
        (genl.DEST_STATS, b""),  # replaced by the nest below
        (genl.DEST_STATS64, b""),
        (genl.DEST_AF, u16(2 if ":" not in address else 10)),
    ]


NESTED = 0x8000


def kernel_dest_reply(attrs: list[tuple[int, bytes]], base: int = 1000) -> bytes:
    """A GET_DEST reply from ``kernel_dest_attrs``; the stats nests count up from ``base``."""
    body = b""
    for kind, value in attrs:
        if kind == genl.DEST_STATS and not value:
            body += stats_nest(kind, base, 4)
        elif kind == genl.DEST_STATS64 and not value:
            body += stats_nest(kind, base, 8)
        else:
            body += genl.nla(kind, value)
    return genl.message(
        FAMILY, genl.NLM_F_MULTI, 0, genl.CMD_NEW_DEST, genl.nla(genl.CMD_ATTR_DEST | NESTED, body)
    )
