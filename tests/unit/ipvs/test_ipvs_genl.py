"""The hand-packed IPVS codec, checked against pyroute2's independent encoder and decoder."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from pyroute2.netlink.generic.ipvs import ipvsmsg

from ldirector.ipvs import genl
from ldirector.ipvs.types import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    Dest,
    EditDest,
    EditService,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    Op,
    Protocol,
    SchedFlags,
    Service,
    ServiceKey,
    Stats,
)

WEB = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.1"), 80)
DNS6 = InetServiceKey(Protocol.UDP, IPv6Address("fd00::1"), 53)
SCTP = InetServiceKey(Protocol.SCTP, IPv4Address("127.0.10.2"), 3868)
MARK = FwmarkServiceKey(Family.INET, 100)
MARK6 = FwmarkServiceKey(Family.INET6, 200)


def decoded(data: bytes) -> Any:
    msg = ipvsmsg(data)
    msg.decode()
    return msg


def svc_fields(msg: Any) -> dict[str, Any]:
    return dict(msg.get("IPVS_CMD_ATTR_SERVICE")["attrs"])


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        (
            Service(key=WEB, scheduler="rr"),
            {
                "IPVS_SVC_ATTR_AF": 2,
                "IPVS_SVC_ATTR_PROTOCOL": 6,
                "IPVS_SVC_ATTR_ADDR": "127.0.10.1",
                "IPVS_SVC_ATTR_PORT": 80,
                "IPVS_SVC_ATTR_SCHED_NAME": "rr",
                "IPVS_SVC_ATTR_FLAGS": {"flags": 0, "mask": 0xFFFFFFFF},
                "IPVS_SVC_ATTR_TIMEOUT": 0,
                "IPVS_SVC_ATTR_NETMASK": "255.255.255.255",
            },
        ),
        (
            Service(key=MARK, persistent=600, netmask=24, flags=SchedFlags.SCHED1),
            {
                "IPVS_SVC_ATTR_AF": 2,
                "IPVS_SVC_ATTR_FWMARK": 100,
                "IPVS_SVC_ATTR_SCHED_NAME": "wlc",
                "IPVS_SVC_ATTR_FLAGS": {"flags": 0x9, "mask": 0xFFFFFFFF},
                "IPVS_SVC_ATTR_TIMEOUT": 600,
                "IPVS_SVC_ATTR_NETMASK": "255.255.255.0",
            },
        ),
        (
            # pyroute2 types NETMASK as ip4addr; the kernel reads an IPv6 prefix as a host u32,
            # which on this little-endian host shows as "64.0.0.0" there.
            Service(key=MARK6, persistent=60, netmask=64, pe_name="sip"),
            {
                "IPVS_SVC_ATTR_AF": 10,
                "IPVS_SVC_ATTR_FWMARK": 200,
                "IPVS_SVC_ATTR_SCHED_NAME": "wlc",
                "IPVS_SVC_ATTR_FLAGS": {"flags": 0x1, "mask": 0xFFFFFFFF},
                "IPVS_SVC_ATTR_TIMEOUT": 60,
                "IPVS_SVC_ATTR_NETMASK": "64.0.0.0",
                "IPVS_SVC_ATTR_PE_NAME": "sip",
            },
        ),
    ],
)
def test_service_requests_decode_in_pyroute2(svc: Service, expected: dict[str, Any]) -> None:
    msg = decoded(genl.encode_op(AddService(svc), 0x1F, 42))
    assert (msg["header"]["type"], msg["header"]["sequence_number"]) == (0x1F, 42)
    assert msg["cmd"] == genl.CMD_NEW_SERVICE
    assert svc_fields(msg) == expected


def test_dest_requests_decode_in_pyroute2() -> None:
    dest = Dest(
        address=IPv6Address("fd00::9"), port=8053, forward=Forward.MASQ, weight=0, upper=9, lower=1
    )
    msg = decoded(genl.encode_op(EditDest(DNS6, dest), 0x1F, 1))
    assert msg["cmd"] == genl.CMD_SET_DEST
    assert svc_fields(msg) == {
        "IPVS_SVC_ATTR_AF": 10,
        "IPVS_SVC_ATTR_PROTOCOL": 17,
        "IPVS_SVC_ATTR_ADDR": "fd00::1",
        "IPVS_SVC_ATTR_PORT": 53,
    }
    assert dict(msg.get("IPVS_CMD_ATTR_DEST")["attrs"]) == {
        "IPVS_DEST_ATTR_ADDR": "fd00::9",
        "IPVS_DEST_ATTR_PORT": 8053,
        "IPVS_DEST_ATTR_ADDR_FAMILY": 10,
        "IPVS_DEST_ATTR_FWD_METHOD": 0,
        "IPVS_DEST_ATTR_WEIGHT": 0,
        "IPVS_DEST_ATTR_U_THRESH": 9,
        "IPVS_DEST_ATTR_L_THRESH": 1,
    }


@pytest.mark.parametrize(
    ("op", "cmd"),
    [
        (EditService(Service(key=SCTP)), genl.CMD_SET_SERVICE),
        (DelService(SCTP), genl.CMD_DEL_SERVICE),
        (AddDest(MARK, Dest(address=IPv4Address("127.0.20.1"), port=0)), genl.CMD_NEW_DEST),
        (DelDest(WEB, Dest(address=IPv4Address("127.0.20.1"), port=80).key), genl.CMD_DEL_DEST),
    ],
)
def test_each_op_uses_its_command(op: Op, cmd: int) -> None:
    assert decoded(genl.encode_op(op, 0x1F, 1))["cmd"] == cmd


def test_negative_weight_reaches_the_kernel_as_a_negative_int() -> None:
    data = genl.encode_op(
        AddDest(WEB, Dest(address=IPv4Address("127.0.0.2"), port=80, weight=-1)), 1, 1
    )
    attrs = genl.attrs(genl.genl_attrs(memoryview(data)[16:])[genl.CMD_ATTR_DEST])
    assert struct.unpack("=i", attrs[genl.DEST_WEIGHT]) == (-1,)


def kernel_reply(cmd: int, attrs: list[tuple[str, Any]], nla: str) -> bytes:
    """A dump reply as the kernel sends it, built with pyroute2's encoder."""
    msg = ipvsmsg()
    msg["cmd"] = cmd
    msg["version"] = 1
    msg["header"]["type"] = 0x1F
    msg["attrs"] = [(nla, {"attrs": attrs})]
    msg.encode()
    return bytes(msg.data)


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


def payload(data: bytes) -> memoryview:
    ((_, _, _, body),) = genl.messages(data)
    return body


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
    svc = genl.decode_service(payload(kernel_reply(1, attrs, "IPVS_CMD_ATTR_SERVICE")))
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
    dest = genl.decode_dest(payload(kernel_reply(5, attrs, "IPVS_CMD_ATTR_DEST")), Family.INET)
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


def test_messages_split_a_batch_and_read_errors() -> None:
    ack = struct.pack("=IHHII", 36, genl.NLMSG_ERROR, 0, 9, 0) + struct.pack("=i", -17) + bytes(16)
    done = struct.pack("=IHHII", 20, genl.NLMSG_DONE, 2, 10, 0) + bytes(4)
    parts = list(genl.messages(ack + done))
    assert [(kind, seq) for kind, _, seq, _ in parts] == [
        (genl.NLMSG_ERROR, 9),
        (genl.NLMSG_DONE, 10),
    ]
    assert genl.error_code(parts[0][3]) == 17
    with pytest.raises(ValueError, match="truncated"):
        list(genl.messages(ack[:30]))


def test_service_keys_select_with_key_attributes_only() -> None:
    keys: list[ServiceKey] = [WEB, MARK6]
    for key in keys:
        fields = svc_fields(decoded(genl.encode_op(DelService(key), 1, 1)))
        assert "IPVS_SVC_ATTR_SCHED_NAME" not in fields
        assert fields["IPVS_SVC_ATTR_AF"] == key.family
