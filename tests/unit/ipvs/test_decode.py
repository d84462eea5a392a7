"""Kernel replies to typed values: pyroute2-built replies decode exactly, and hostile entries
(unknown values, odd sizes, duplicates) become opaque without hiding the readable ones."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest

from ldirector.core.reconcile import diff
from ldirector.ipvs import decode, genl
from ldirector.ipvs.backend import ApplyError, MalformedReply
from ldirector.ipvs.ops import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    op_service_key,
)
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import (
    Dest,
    DestKey,
    Family,
    ForeignDest,
    ForeignService,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    Protocol,
    SchedFlags,
    Service,
    Stats,
    VirtualService,
)
from ldirector.testing import FakeBackend

from .wire import daemonmsg, dest_reply, payload, pyroute2_reply, service_reply, u16, u32

WEB = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.1"), 80)
WEB2 = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.2"), 80)
DNS6 = InetServiceKey(Protocol.UDP, IPv6Address("fd00::1"), 53)
MARK = FwmarkServiceKey(Family.INET, 100)
R1 = DestKey(IPv4Address("127.0.20.1"), 80)
R2 = DestKey(IPv4Address("127.0.20.2"), 80)


STATS = {
    "attrs": [
        ("IPVS_STATS_ATTR_CONNS", 5),
        ("IPVS_STATS_ATTR_INPKTS", 10),
        ("IPVS_STATS_ATTR_OUTPKTS", 11),
        ("IPVS_STATS_ATTR_INBYTES", 2**40),
        ("IPVS_STATS_ATTR_OUTBYTES", 7),
        ("IPVS_STATS_ATTR_CPS", 1),
    ]
}


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        (
            [
                ("IPVS_SVC_ATTR_AF", 10),
                ("IPVS_SVC_ATTR_PROTOCOL", 17),
                ("IPVS_SVC_ATTR_ADDR", "fd00::1"),
                ("IPVS_SVC_ATTR_PORT", 53),
                ("IPVS_SVC_ATTR_SCHED_NAME", "sh"),
                ("IPVS_SVC_ATTR_FLAGS", {"flags": 0x2 | 0x1 | 0x10 | 0x4, "mask": 0xFFFFFFFF}),
                ("IPVS_SVC_ATTR_TIMEOUT", 300),
                ("IPVS_SVC_ATTR_NETMASK", "48.0.0.0"),  # host-order u32 48 on little-endian
                ("IPVS_SVC_ATTR_STATS64", STATS),
            ],
            Service(
                key=DNS6,
                scheduler="sh",
                flags=SchedFlags.SCHED2 | SchedFlags.ONEPACKET,
                persistent=300,
                netmask=48,
            ),
        ),
        (
            [
                ("IPVS_SVC_ATTR_AF", 2),
                ("IPVS_SVC_ATTR_PROTOCOL", 6),
                ("IPVS_SVC_ATTR_ADDR", "0.0.0.0"),
                ("IPVS_SVC_ATTR_PORT", 0),
                ("IPVS_SVC_ATTR_FWMARK", 100),
                ("IPVS_SVC_ATTR_SCHED_NAME", "wlc"),
                ("IPVS_SVC_ATTR_FLAGS", {"flags": 0x2, "mask": 0xFFFFFFFF}),
                ("IPVS_SVC_ATTR_TIMEOUT", 0),
                ("IPVS_SVC_ATTR_NETMASK", "255.255.0.0"),
                ("IPVS_SVC_ATTR_STATS", STATS),
            ],
            Service(key=MARK, netmask=16),
        ),
    ],
)
def test_decode_service_reply(attrs: list[tuple[str, Any]], expected: Service) -> None:
    svc = decode.service(payload(pyroute2_reply(1, attrs, "IPVS_CMD_ATTR_SERVICE")))
    assert isinstance(svc, Service)
    assert svc == expected
    assert svc.stats == Stats(
        conns=5, in_packets=10, out_packets=11, in_bytes=2**40, out_bytes=7, cps=1
    )


def test_decode_dest_reply() -> None:
    attrs = [
        ("IPVS_DEST_ATTR_ADDR_FAMILY", 2),  # pyroute2 needs it before ADDR to encode ADDR
        ("IPVS_DEST_ATTR_ADDR", "127.0.20.1"),
        ("IPVS_DEST_ATTR_PORT", 8080),
        ("IPVS_DEST_ATTR_FWD_METHOD", 2),
        ("IPVS_DEST_ATTR_WEIGHT", 7),
        ("IPVS_DEST_ATTR_U_THRESH", 50),
        ("IPVS_DEST_ATTR_L_THRESH", 5),
        ("IPVS_DEST_ATTR_ACTIVE_CONNS", 3),
        ("IPVS_DEST_ATTR_INACT_CONNS", 4),
        ("IPVS_DEST_ATTR_PERSIST_CONNS", 2),
        ("IPVS_DEST_ATTR_STATS", STATS),
    ]
    dest = decode.dest(payload(pyroute2_reply(5, attrs, "IPVS_CMD_ATTR_DEST")), Family.INET)
    assert isinstance(dest, Dest)
    assert dest == Dest(
        address=IPv4Address("127.0.20.1"),
        port=8080,
        forward=Forward.IPIP,
        weight=7,
        upper=50,
        lower=5,
    )
    assert dest.counters is not None
    assert (dest.counters.active_conns, dest.counters.inactive_conns) == (3, 4)
    assert dest.counters.persist_conns == 2
    assert dest.counters.stats.in_bytes == 2**40


def daemon_reply(attrs: list[tuple[str, Any]]) -> memoryview:
    return payload(pyroute2_reply(genl.CMD_NEW_DAEMON, attrs, "IPVS_CMD_ATTR_DAEMON", daemonmsg))


def test_decode_daemon_reply() -> None:
    got = decode.daemon(
        daemon_reply(
            [
                ("IPVS_DAEMON_ATTR_STATE", 2),
                ("IPVS_DAEMON_ATTR_MCAST_IFN", "lo"),
                ("IPVS_DAEMON_ATTR_SYNC_ID", 7),
                ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", 1472),
                ("IPVS_DAEMON_ATTR_MCAST_PORT", 9000),
                ("IPVS_DAEMON_ATTR_MCAST_TTL", 2),
                ("IPVS_DAEMON_ATTR_MCAST_GROUP6", "ff02::81"),
            ]
        )
    )
    assert got == SyncDaemon(
        state=DaemonState.BACKUP,
        interface="lo",
        syncid=7,
        maxlen=1472,
        group=IPv6Address("ff02::81"),
        port=9000,
        ttl=2,
    )


def test_a_kernel_before_4_3_reports_only_role_interface_and_id() -> None:
    attrs = [
        ("IPVS_DAEMON_ATTR_STATE", 1),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", "eth0"),
        ("IPVS_DAEMON_ATTR_SYNC_ID", 3),
    ]
    assert decode.daemon(daemon_reply(attrs)) == SyncDaemon(
        state=DaemonState.MASTER, interface="eth0", syncid=3
    )


def test_an_unreadable_daemon_is_a_malformed_reply() -> None:
    attrs = [("IPVS_DAEMON_ATTR_STATE", 4), ("IPVS_DAEMON_ATTR_MCAST_IFN", "lo")]
    with pytest.raises(MalformedReply, match="sync daemon ldirector cannot read: 4 is not a valid"):
        decode.daemon(daemon_reply(attrs))


# Hostile entries: each is opaque, with the reason and, where readable, its key.


@pytest.mark.parametrize(
    ("changed", "key", "reason"),
    [
        ({"AF": u16(99)}, None, "unknown address family 99"),
        ({"PROTOCOL": u16(1)}, None, "unknown protocol 1"),
        ({"PORT": b"\0\0\x50"}, None, "port attribute is 3 bytes, not 2"),
        ({"ADDR": b"\x7f\0"}, None, "address attribute is 2 bytes, too short for INET"),
        ({"AF": None}, None, "no family attribute"),
        ({"NETMASK": b"\xff\xff"}, WEB, "netmask attribute is 2 bytes, not 4"),
        ({"FLAGS": u32(2)}, WEB, "flags attribute is 4 bytes, not 8"),
        ({"SCHED_NAME": None}, WEB, "no scheduler attribute"),
        ({"TIMEOUT": b"\0"}, WEB, "timeout attribute is 1 bytes, not 4"),
    ],
)
def test_foreign_service(changed: dict[str, bytes | None], key: Any, reason: str) -> None:
    data = service_reply(**changed)
    got = decode.service(payload(data))
    assert isinstance(got, ForeignService)
    assert (got.key, got.reason) == (key, reason)
    assert got.raw == bytes(genl.genl_attrs(payload(data))[genl.CMD_ATTR_SERVICE])


@pytest.mark.parametrize(
    ("changed", "key", "reason"),
    [
        ({"FWD": u32(4)}, R1, "unknown forwarding method 4"),
        ({"FWD": u32(0x1007)}, R1, "unknown forwarding method 7"),
        ({"WEIGHT": u16(1)}, R1, "weight attribute is 2 bytes, not 4"),
        ({"U_THRESH": b"\0" * 8}, R1, "upper threshold attribute is 8 bytes, not 4"),
        ({"AF": u16(7)}, None, "unknown address family 7"),
        ({"PORT": None}, None, "no port attribute"),
    ],
)
def test_foreign_dest(changed: dict[str, bytes | None], key: Any, reason: str) -> None:
    got = decode.dest(payload(dest_reply(**changed)), Family.INET)
    assert isinstance(got, ForeignDest)
    assert (got.key, got.reason) == (key, reason)


def test_odd_counters_lose_the_counters_not_the_entry() -> None:
    got = decode.dest(payload(dest_reply(ACTIVE=b"\0\0")), Family.INET)
    assert isinstance(got, Dest)
    assert got == Dest(address=R1.address, port=80)
    assert got.counters is None
    broken_stats = genl.nla(1, u32(5))[:-2]  # an attribute cut short inside the stats nest
    svc = decode.service(payload(service_reply(STATS=broken_stats)))
    assert isinstance(svc, Service)
    assert svc == Service(key=WEB)
    assert svc.stats is None


@pytest.mark.parametrize(
    "payload_bytes",
    [
        b"\x01\x01",  # shorter than the generic-netlink header
        bytes(4) + genl.nla(genl.CMD_ATTR_DEST, b""),  # no service attribute
        bytes(4) + genl.nla(genl.CMD_ATTR_SERVICE, b"\x40\0\x01\0" + bytes(8)),  # overrun
    ],
)
def test_a_service_message_without_a_readable_service(payload_bytes: bytes) -> None:
    got = decode.service(memoryview(payload_bytes))
    assert isinstance(got, ForeignService)
    assert got.key is None


def test_assemble_keeps_readable_entries_beside_foreign_ones_and_last_copies() -> None:
    odd_family = decode.service(payload(service_reply(AF=u16(99))))
    odd_netmask = decode.service(payload(service_reply("127.0.10.2", NETMASK=b"\xff")))
    web = decode.service(payload(service_reply()))
    web_again = decode.service(payload(service_reply(SCHED_NAME=b"rr\0")))
    reals = [
        decode.dest(payload(dest_reply()), Family.INET),
        decode.dest(payload(dest_reply("127.0.20.2", FWD=u32(4))), Family.INET),
        decode.dest(payload(dest_reply(WEIGHT=u32(5))), Family.INET),
    ]
    table, notes = decode.assemble(
        [(web, []), (odd_family, ()), (odd_netmask, ()), (web_again, reals), (odd_family, ())]
    )
    assert list(table.services) == [WEB]
    vs = table[WEB]
    assert vs.service.scheduler == "rr"
    assert vs.dests == {R1: Dest(address=R1.address, port=80, weight=5)}
    assert [(f.key, f.reason) for f in vs.foreign] == [(R2, "unknown forwarding method 4")]
    assert [(f.key, f.reason) for f in table.foreign] == [
        (WEB2, "netmask attribute is 1 bytes, not 4"),
        (None, "unknown address family 99"),
    ]
    # One note per oddity for the caller to log; the caller logs each distinct note once.
    assert set(notes) == {
        "IPVS service tcp:127.0.10.1:80 was listed twice while the table changed;"
        " the last copy is kept",
        "IPVS real 127.0.20.1:80 of tcp:127.0.10.1:80 was listed twice while the table"
        " changed; the last copy is kept",
        "IPVS service (address unreadable) cannot be read by ldirector"
        " (unknown address family 99); it is left as it is",
        "IPVS service tcp:127.0.10.2:80 cannot be read by ldirector"
        " (netmask attribute is 1 bytes, not 4); it is left as it is",
        "IPVS real 127.0.20.2:80 of tcp:127.0.10.1:80 cannot be read by ldirector"
        " (unknown forwarding method 4); it is left as it is",
    }


def test_a_service_listed_readable_then_foreign_keeps_only_the_foreign_copy() -> None:
    web = decode.service(payload(service_reply()))
    odd = decode.service(payload(service_reply(NETMASK=b"\xff")))
    table, _ = decode.assemble([(web, []), (odd, ())])
    assert WEB not in table
    assert [f.key for f in table.foreign] == [WEB]


# What reconcile does with such a table: it must not crash, and it must never name a foreign
# entry in an op that changes or removes it.


def hostile_table() -> IpvsTable:
    """WEB is readable but one of its reals uses forwarding method 4; WEB2's key is readable but
    its netmask is not, so it is foreign although ldirector owns that key."""
    web = decode.service(payload(service_reply()))
    reals = [
        decode.dest(payload(dest_reply()), Family.INET),
        decode.dest(payload(dest_reply("127.0.20.2", FWD=u32(4))), Family.INET),
    ]
    web2 = decode.service(payload(service_reply("127.0.10.2", NETMASK=b"\xff")))
    table, _ = decode.assemble([(web, reals), (web2, ())])
    return table


def desired() -> IpvsTable:
    reals = [Dest(address=R1.address, port=80, weight=2), Dest(address=R2.address, port=80)]
    return IpvsTable.of(
        VirtualService.of(Service(key=WEB), reals),
        VirtualService.of(Service(key=WEB2), [Dest(address=R1.address, port=80)]),
    )


async def test_diff_never_changes_or_removes_a_foreign_entry() -> None:
    actual = hostile_table()
    ops = diff(desired(), actual, {WEB, WEB2})
    for op in ops:
        assert not isinstance(op, EditService | DelService) or op_service_key(op) != WEB2
        assert not (isinstance(op, EditDest) and op.dest.key == R2)
        assert not (isinstance(op, DelDest) and op.dest == R2)
    # Not even dropping it from the config deletes a service ldirector cannot read.
    assert diff(IpvsTable(), actual, {WEB2}) == []

    kernel = FakeBackend(actual)
    try:
        await kernel.apply(ops)
    except ApplyError as exc:
        # Only an add that bumps into a foreign entry may fail, as it would in the kernel.
        assert {type(f.op) for f in exc.failures} <= {AddService, AddDest}
    after = kernel.table
    assert after.foreign == actual.foreign
    assert after[WEB].foreign == actual[WEB].foreign
    assert after[WEB].dests[R1].weight == 2


def test_diff_leaves_an_owned_key_held_by_a_foreign_service_alone() -> None:
    ops = diff(desired(), hostile_table(), {WEB, WEB2})
    assert [op for op in ops if op_service_key(op) == WEB2] == []
