"""Shared bits of the observability tests: a small config, a kernel table and a snapshot."""

from __future__ import annotations

from ipaddress import ip_address

from ldirector.config import Config, loads
from ldirector.desired import RealKey
from ldirector.health import RealHealth, Status
from ldirector.ipvs.types import (
    Dest,
    DestCounters,
    DestKey,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    Stats,
    VirtualService,
)
from ldirector.status import CheckStats, Counters, Snapshot, build

TEXT = """\
checktimeout=3
checkinterval=5
quiescent=no
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq
	service=http
	request="index.html"
	receive="Test Page"
	scheduler=wrr
virtual=7
	real=127.0.0.4:443 masq
	service=none
	checktype=on
"""

SVC = InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)
R2 = RealKey(SVC, DestKey(ip_address("127.0.0.2"), 8080))
R3 = RealKey(SVC, DestKey(ip_address("127.0.0.3"), 8080))


def config(text: str = TEXT) -> Config:
    return loads(text, "ldirectord.cf")


def dest(last: int, weight: int, active: int = 0, inactive: int = 0, conns: int = 0) -> Dest:
    return Dest(
        address=ip_address(f"127.0.0.{last}"),
        port=8080,
        forward=Forward.MASQ,
        weight=weight,
        counters=DestCounters(
            active_conns=active,
            inactive_conns=inactive,
            stats=Stats(conns=conns, in_bytes=1000 * conns, out_bytes=5000 * conns),
        ),
    )


def table(*dests: Dest) -> IpvsTable:
    return IpvsTable.of(VirtualService.of(Service(key=SVC, scheduler="wrr"), dests))


def snapshot() -> Snapshot:
    """R2 up and serving with traffic; R3 down and absent; the fwmark virtual not in the kernel."""
    health = {
        R2: RealHealth(status=Status.UP, reason="HTTP 200 OK"),
        R3: RealHealth(status=Status.DOWN, reason="connection refused"),
    }
    actual = table(dest(2, 5, active=3, inactive=4, conns=12))
    checks = CheckStats()
    for elapsed in (0.002, 0.02, 0.2):
        checks.record("p2", True, elapsed)
    checks.record("p3", False, 3.0)
    counters = Counters(reconciles=4, ops=6, op_errors=1, drift_repairs=2)
    return build(
        config(),
        health,
        actual=actual,
        desired=actual,
        started=1_700_000_000.0,
        changed={R3: 1_700_000_100.0},
        probe_of={R2: "p2", R3: "p3"},
        checks=checks,
        counters=counters,
        config_name="/etc/ha.d/ldirectord.cf",
        now=1_700_000_200.0,
    )
