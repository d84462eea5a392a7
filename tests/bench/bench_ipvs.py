"""Benchmark: ldirector's batched netlink backend against ``ipvsadm -R`` on the same table.

Adds 100 services x 100 destinations to an empty table, changes 10% of the weights, then deletes
everything; the same op lists go to ``ipvsadm -R`` as text. Prints both times and the ratio
against the bar (ldirector's throughput >= 1.0x ipvsadm -R's). It changes the IPVS table, so
outside the test VM it boots one with ``scripts/vm-test --bench``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from pathlib import Path

from ldirector.core.reconcile import diff
from ldirector.ipvs.ipvsadm import format_op
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.ipvs.ops import Op
from ldirector.ipvs.types import Dest, InetServiceKey, IpvsTable, Protocol, Service, VirtualService

SERVICES = 100
DESTS = 100
BAR = 1.0


def build_tables() -> tuple[IpvsTable, IpvsTable]:
    """The full table and the same table with every tenth destination's weight changed."""
    full, changed = [], []
    for s in range(SERVICES):
        # Table entries only; nothing is sent to these addresses.
        key = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.1"), 1000 + s)
        dests = [
            Dest(address=IPv4Address(f"127.1.{d // 250}.{d % 250 + 1}"), port=key.port, weight=1)
            for d in range(DESTS)
        ]
        full.append(VirtualService.of(Service(key=key, scheduler="wrr"), dests))
        edited = [
            Dest(address=x.address, port=x.port, weight=5) if i % 10 == 0 else x
            for i, x in enumerate(dests)
        ]
        changed.append(VirtualService.of(Service(key=key, scheduler="wrr"), edited))
    return IpvsTable.of(*full), IpvsTable.of(*changed)


def phases(full: IpvsTable, changed: IpvsTable) -> list[tuple[str, Callable[[], list[Op]]]]:
    owned = set(full.services)
    return [
        ("add 100x100", lambda: diff(full, IpvsTable(), owned)),
        ("edit 10% weights", lambda: diff(changed, full, owned)),
        ("delete all", lambda: diff(IpvsTable(), changed, owned)),
    ]


def ipvsadm(*args: str, stdin: str = "") -> None:
    subprocess.run(["ipvsadm", *args], input=stdin, text=True, check=True, timeout=600)


async def run_ldirector(steps: Sequence[tuple[str, Callable[[], list[Op]]]]) -> list[float]:
    backend = NetlinkBackend()
    await backend.dump()  # socket and family lookup outside the timing, like ipvsadm's exec
    times = []
    for _, plan in steps:
        start = time.perf_counter()
        await backend.apply(plan())  # diffing and encoding count against ldirector
        times.append(time.perf_counter() - start)
    await backend.close()
    return times


def run_ipvsadm(steps: Sequence[tuple[str, Callable[[], list[Op]]]]) -> list[float]:
    times = []
    for _, plan in steps:
        text = "".join(format_op(op) + "\n" for op in plan())
        start = time.perf_counter()
        ipvsadm("-R", stdin=text)
        times.append(time.perf_counter() - start)
    return times


async def check_same_result(full: IpvsTable, changed: IpvsTable) -> None:
    """Both paths must build the very same table, or the timing compares different work."""
    owned = set(full.services)
    backend = NetlinkBackend()
    await backend.apply(diff(full, IpvsTable(), owned))
    await backend.apply(diff(changed, full, owned))
    mine = await backend.dump()
    ipvsadm("-C")
    text = "".join(format_op(op) + "\n" for op in diff(full, IpvsTable(), owned))
    text += "".join(format_op(op) + "\n" for op in diff(changed, full, owned))
    ipvsadm("-R", stdin=text)
    theirs = await backend.dump()
    await backend.close()
    ipvsadm("-C")
    if not mine == theirs == changed:
        raise SystemExit("bench_ipvs: ldirector and ipvsadm -R built different tables")


def main() -> int:
    if os.environ.get("LDIRECTOR_IN_VM") != "1":
        root = Path(__file__).resolve().parents[2]
        return subprocess.run(
            [str(root / "scripts/vm-test"), "--bench", "tests/bench/bench_ipvs.py"], check=False
        ).returncode
    subprocess.run(["modprobe", "ip_vs"], check=True)
    full, changed = build_tables()
    steps = phases(full, changed)
    ipvsadm("-C")
    asyncio.run(check_same_result(full, changed))
    mine = asyncio.run(run_ldirector(steps))
    theirs = run_ipvsadm(steps)
    ops = [len(plan()) for _, plan in steps]
    print(f"bench_ipvs: {SERVICES} services x {DESTS} destinations, same ops both ways")
    for (name, _), n, a, b in zip(steps, ops, mine, theirs, strict=True):
        print(f"  {name:<17} {n:>6} ops  ldirector {a:8.3f} s   ipvsadm -R {b:8.3f} s")
    total_mine, total_theirs = sum(mine), sum(theirs)
    ratio = total_theirs / total_mine
    verdict = "PASS" if ratio >= BAR else "FAIL"
    print(
        f"bench_ipvs: ldirector {total_mine:.3f} s, ipvsadm -R {total_theirs:.3f} s, "
        f"throughput ratio {ratio:.2f}x (bar >= {BAR:.1f}x): {verdict}"
    )
    return 0 if ratio >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
