"""Ops and tables rendered as ipvsadm -R lines."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from ldirector.ipvs.ipvsadm import format_op, format_table
from ldirector.ipvs.ops import AddDest, AddService, DelDest, DelService, EditDest, EditService, Op
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
    VirtualService,
)

WEB = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.1"), 80)
DNS6 = InetServiceKey(Protocol.UDP, IPv6Address("fd00::1"), 53)
MARK6 = FwmarkServiceKey(Family.INET6, 200)
R1 = Dest(address=IPv4Address("127.0.20.1"), port=80, weight=2, upper=100, lower=10)


@pytest.mark.parametrize(
    ("op", "line"),
    [
        (AddService(Service(key=WEB, scheduler="rr")), "-A -t 127.0.10.1:80 -s rr"),
        (
            AddService(Service(key=WEB, persistent=300, netmask=24)),
            "-A -t 127.0.10.1:80 -s wlc -p 300 -M 255.255.255.0",
        ),
        (
            EditService(Service(key=DNS6, flags=SchedFlags.ONEPACKET, persistent=60)),
            "-E -u [fd00::1]:53 -s wlc -p 60 -o",
        ),
        (
            AddService(
                Service(
                    key=MARK6,
                    scheduler="mh",
                    flags=SchedFlags.SCHED1 | SchedFlags.SCHED2,
                    persistent=10,
                    netmask=64,
                )
            ),
            "-A -f 200 -6 -s mh -b flag-1,flag-2 -p 10 -M 64",
        ),
        (DelService(FwmarkServiceKey(Family.INET, 7)), "-D -f 7"),
        (AddDest(WEB, R1), "-a -t 127.0.10.1:80 -r 127.0.20.1:80 -g -w 2 -x 100 -y 10"),
        (
            EditDest(DNS6, Dest(address=IPv6Address("fd00::9"), port=53, forward=Forward.MASQ)),
            "-e -u [fd00::1]:53 -r [fd00::9]:53 -m -w 1 -x 0 -y 0",
        ),
        (DelDest(WEB, R1.key), "-d -t 127.0.10.1:80 -r 127.0.20.1:80"),
    ],
)
def test_format_op(op: Op, line: str) -> None:
    assert format_op(op) == line


def test_format_table_recreates_in_key_order() -> None:
    table = IpvsTable.of(
        VirtualService.of(Service(key=MARK6)),
        VirtualService.of(Service(key=WEB), [R1]),
    )
    assert format_table(table) == (
        "-A -t 127.0.10.1:80 -s wlc\n"
        "-a -t 127.0.10.1:80 -r 127.0.20.1:80 -g -w 2 -x 100 -y 10\n"
        "-A -f 200 -6 -s wlc\n"
    )


def test_format_table_leaves_out_foreign_entries() -> None:
    odd_real = ForeignDest(DestKey(IPv4Address("127.0.20.9"), 80), "unknown method 4", b"")
    odd_service = ForeignService(None, "unknown address family 99", b"")
    table = IpvsTable.of(
        VirtualService.of(Service(key=WEB), [R1], [odd_real]), foreign=[odd_service]
    )
    assert format_table(table) == (
        "-A -t 127.0.10.1:80 -s wlc\n-a -t 127.0.10.1:80 -r 127.0.20.1:80 -g -w 2 -x 100 -y 10\n"
    )
