"""The hand-packed IPVS requests, checked against pyroute2's independent decoder."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from pyroute2.netlink.generic.ipvs import ipvsmsg

from ldirector.ipvs import genl
from ldirector.ipvs.backend import IpvsError, MalformedReply
from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import (
    Dest,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    Protocol,
    SchedFlags,
    Service,
    ServiceKey,
)

from .wire import daemonmsg

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


def test_messages_split_a_batch_and_read_errors() -> None:
    ack = struct.pack("=IHHII", 36, genl.NLMSG_ERROR, 0, 9, 0) + struct.pack("=i", -17) + bytes(16)
    done = struct.pack("=IHHII", 20, genl.NLMSG_DONE, 2, 10, 0) + bytes(4)
    parts = list(genl.messages(ack + done))
    assert [(kind, seq) for kind, _, seq, _ in parts] == [
        (genl.NLMSG_ERROR, 9),
        (genl.NLMSG_DONE, 10),
    ]
    assert genl.error_code(parts[0][3]) == 17


def test_service_keys_select_with_key_attributes_only() -> None:
    keys: list[ServiceKey] = [WEB, MARK6]
    for key in keys:
        fields = svc_fields(decoded(genl.encode_op(DelService(key), 1, 1)))
        assert "IPVS_SVC_ATTR_SCHED_NAME" not in fields
        assert fields["IPVS_SVC_ATTR_AF"] == key.family


def daemon_fields(data: bytes) -> tuple[Any, dict[str, Any]]:
    msg = daemonmsg(data)
    msg.decode()
    return msg, dict(msg.get("IPVS_CMD_ATTR_DAEMON")["attrs"])


def test_start_daemon_request_decodes_in_pyroute2() -> None:
    backup = SyncDaemon(state=DaemonState.BACKUP, interface="lo", syncid=7)
    msg, fields = daemon_fields(genl.start_daemon_request(0x1F, 5, backup))
    assert (msg["cmd"], msg["header"]["sequence_number"]) == (genl.CMD_NEW_DAEMON, 5)
    assert msg["header"]["flags"] == genl.NLM_F_REQUEST | genl.NLM_F_ACK
    assert fields == {
        "IPVS_DAEMON_ATTR_STATE": 2,
        "IPVS_DAEMON_ATTR_MCAST_IFN": "lo",
        "IPVS_DAEMON_ATTR_SYNC_ID": 7,
        "IPVS_DAEMON_ATTR_MCAST_GROUP": "224.0.0.81",
        "IPVS_DAEMON_ATTR_MCAST_PORT": 8848,
        "IPVS_DAEMON_ATTR_MCAST_TTL": 1,
    }


def test_start_daemon_request_with_every_setting() -> None:
    master = SyncDaemon(
        state=DaemonState.MASTER,
        interface="eth1",
        syncid=255,
        maxlen=1400,
        group=IPv6Address("ff02::81"),
        port=9000,
        ttl=3,
    )
    _, fields = daemon_fields(genl.start_daemon_request(0x1F, 1, master))
    assert fields == {
        "IPVS_DAEMON_ATTR_STATE": 1,
        "IPVS_DAEMON_ATTR_MCAST_IFN": "eth1",
        "IPVS_DAEMON_ATTR_SYNC_ID": 255,
        "IPVS_DAEMON_ATTR_SYNC_MAXLEN": 1400,
        "IPVS_DAEMON_ATTR_MCAST_GROUP6": "ff02::81",
        "IPVS_DAEMON_ATTR_MCAST_PORT": 9000,
        "IPVS_DAEMON_ATTR_MCAST_TTL": 3,
    }


def test_stop_and_dump_daemon_requests() -> None:
    msg, fields = daemon_fields(genl.stop_daemon_request(0x1F, 2, DaemonState.MASTER))
    assert msg["cmd"] == genl.CMD_DEL_DAEMON
    assert fields == {"IPVS_DAEMON_ATTR_STATE": 1}
    dump = decoded(genl.dump_daemons_request(0x1F, 3))
    assert dump["cmd"] == genl.CMD_GET_DAEMON
    assert dump["header"]["flags"] == genl.NLM_F_REQUEST | genl.NLM_F_DUMP
    assert dump["attrs"] == []


def header(size: int, kind: int = genl.NLMSG_DONE) -> bytes:
    return struct.pack("=IHHII", size, kind, 0, 1, 0)


@pytest.mark.parametrize(
    "data",
    [
        header(40) + bytes(4),  # claims more than arrived
        header(8) + bytes(4),  # shorter than its own header
        header(20) + bytes(4) + b"\x01\x02",  # a stray tail too short for a header
    ],
)
def test_broken_framing_is_an_ipvs_error(data: bytes) -> None:
    with pytest.raises(IpvsError, match=r"^malformed reply from the kernel: truncated"):
        list(genl.messages(data))


def test_attributes_that_overrun_their_container_are_refused() -> None:
    good = genl.nla(1, b"ab")
    assert genl.attrs(memoryview(good + b"\0\0"))[1].tobytes() == b"ab"  # padding tolerated
    with pytest.raises(MalformedReply, match="claims 60 bytes"):
        genl.attrs(memoryview(good + struct.pack("=HH", 60, 2) + bytes(4)))
    with pytest.raises(MalformedReply, match="claims 2 bytes"):
        genl.attrs(memoryview(struct.pack("=HH", 2, 1) + bytes(4)))


def test_control_replies_without_what_is_needed() -> None:
    with pytest.raises(MalformedReply, match="no generic-netlink family id"):
        genl.family_id(memoryview(bytes(4) + genl.nla(genl.CTRL_ATTR_FAMILY_NAME, b"IPVS\0")))
    with pytest.raises(MalformedReply, match="without its code"):
        genl.error_code(memoryview(b"\0\0"))
