"""The ipvsadm -R text of ops and tables, fed to the real ipvsadm, builds what netlink builds."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from ldirector.core.reconcile import diff
from ldirector.ipvs.ipvsadm import format_op, format_table
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.ipvs.types import (
    Dest,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    Protocol,
    SchedFlags,
    Service,
    VirtualService,
)
from ldirector.testing import FakeBackend

from .test_kernel_netlink import edited, every_attribute
from .vmtools import ipvsadm

pytestmark = pytest.mark.kernel


async def test_restore_of_format_table_equals_netlink(kernel: NetlinkBackend) -> None:
    table = every_attribute()
    await kernel.apply(diff(table, IpvsTable(), set(table.services)))
    via_netlink = await kernel.dump()

    ipvsadm("-C")
    ipvsadm("-R", stdin=format_table(table))
    via_ipvsadm = await kernel.dump()
    assert via_ipvsadm == via_netlink == table


async def test_ipvsadm_text_of_ops_equals_netlink(kernel: NetlinkBackend) -> None:
    start = every_attribute()
    goal = edited(start).without(list(start.services)[:2])
    extra_key = FwmarkServiceKey(Family.INET, 9)
    goal = IpvsTable.of(
        *goal,
        VirtualService.of(
            Service(key=extra_key, scheduler="mh", flags=SchedFlags.SCHED2),
            [Dest(address=IPv4Address("127.0.20.9"), port=0, forward=Forward.MASQ)],
        ),
    )
    owned = set(start.services) | {extra_key}
    ops = diff(goal, start, owned)

    model = FakeBackend(start)
    await model.apply(ops)
    assert await model.dump() == goal
    restore = "".join(format_op(op) + "\n" for op in ops)

    await kernel.apply(diff(start, IpvsTable(), owned))
    ipvsadm("-R", stdin=restore)
    via_ipvsadm = await kernel.dump()

    ipvsadm("-C")
    await kernel.apply(diff(start, IpvsTable(), owned))
    await kernel.apply(ops)
    assert await kernel.dump() == via_ipvsadm == goal


async def test_ipvsadm_port_rule_for_gate_is_visible(kernel: NetlinkBackend) -> None:
    # ipvsadm rewrites a gate/ipip real's port to the virtual port; netlink does not. The engine
    # must apply that rule itself (docs/ipvs.md); this pins the difference down.
    key = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.1"), 80)
    table = IpvsTable.of(
        VirtualService.of(Service(key=key), [Dest(address=IPv4Address("127.0.20.1"), port=8080)])
    )
    ipvsadm("-R", stdin=format_table(table))
    (dest,) = (await kernel.dump())[key].dests.values()
    assert dest.port == 80
