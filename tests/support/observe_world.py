"""Shared bits of the observability tests: a small config, a kernel table and a snapshot."""

from __future__ import annotations

from ipaddress import ip_address

from ldirector.config import Config, loads
from ldirector.core.desired import RealKey, desired_table, real_key
from ldirector.core.health import RealHealth, Status
from ldirector.core.layout import Layout
from ldirector.core.plan import reals_by_key
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
from ldirector.observe.snapshot import CheckStats, Counters, Snapshot, build

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
        job_of={R2: "p2", R3: "p3"},
        checks=checks,
        counters=counters,
        config_name="/etc/ha.d/ldirectord.cf",
        now=1_700_000_200.0,
    )


class BigWorld:
    """A daemon's state at scale: ``reals`` reals, 100 per virtual, all up, each with check
    counts; :meth:`snapshot` builds a snapshot as the engine does and counts the builds."""

    def __init__(self, reals: int, per: int = 100) -> None:
        lines: list[str] = []
        for v in range((reals + per - 1) // per):
            lines.append(f"virtual=127.1.{v // 250}.{v % 250 + 1}:80")
            for r in range(min(per, reals - v * per)):
                lines.append(f"\treal=127.2.{v // 250}.{v % 250 + 1}:{8000 + r} masq")
            lines.append("\tchecktype=on")
        self.config = loads("\n".join(lines) + "\n", "big.cf")
        self.layout = Layout(self.config, reals_by_key(self.config))
        self.keys = [real_key(v, r) for v in self.config.virtuals for r in v.reals]
        self.health = {k: RealHealth(status=Status.UP, reason="HTTP 200 OK") for k in self.keys}
        self.checks = CheckStats()
        for k in self.keys:
            self.checks.record(k, True, 0.004)
        self.job_of = {k: k for k in self.keys}
        self.table = desired_table(self.config, self.health, IpvsTable())
        self.builds = 0

    def build(self) -> Snapshot:
        self.builds += 1
        return build(
            self.config,
            self.health,
            actual=self.table,
            desired=self.table,
            started=0.0,
            now=1_700_000_000.0,
            layout=self.layout,
            job_of=self.job_of,
            checks=self.checks,
        )

    async def snapshot(self) -> Snapshot:
        return self.build()
