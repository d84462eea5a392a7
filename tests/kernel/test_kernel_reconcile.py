"""reconcile.diff in the real kernel: converges from arbitrary tables, spares foreign services."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldirector.core.reconcile import diff
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.ipvs.ops import op_service_key
from ldirector.ipvs.types import (
    Dest,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IPAddress,
    IpvsTable,
    Protocol,
    SchedFlags,
    Service,
    ServiceKey,
    VirtualService,
)
from ldirector.testing import FakeBackend

from .vmtools import ipvsadm

pytestmark = pytest.mark.kernel

# Table entries only: no traffic is ever sent to these addresses.
VIPS: list[IPAddress] = [IPv4Address("127.0.10.1"), IPv6Address("fd00::1")]
REALS: dict[Family, list[IPAddress]] = {
    Family.INET: [IPv4Address(f"127.0.20.{i}") for i in range(1, 4)],
    Family.INET6: [IPv6Address(f"fd00:1::{i}") for i in range(1, 4)],
}

service_keys: st.SearchStrategy[ServiceKey] = st.one_of(
    st.builds(
        InetServiceKey,
        st.sampled_from(list(Protocol)),
        st.sampled_from(VIPS),
        st.sampled_from([80, 443]),
    ),
    st.builds(FwmarkServiceKey, st.sampled_from(list(Family)), st.sampled_from([1, 2])),
)


@st.composite
def virtual_services(draw: st.DrawFn, key: ServiceKey) -> VirtualService:
    persistent = draw(st.none() | st.sampled_from([60, 300]))
    prefix = key.family.max_prefix
    svc = Service(
        key=key,
        scheduler=draw(st.sampled_from(["wlc", "wrr", "rr", "sh"])),
        flags=draw(st.sampled_from([SchedFlags.NONE, SchedFlags.SCHED1, SchedFlags.ONEPACKET])),
        persistent=persistent,
        netmask=draw(st.sampled_from([prefix, prefix - 8])) if persistent else None,
    )
    found: dict[IPAddress, Dest] = {}
    for address in draw(st.lists(st.sampled_from(REALS[key.family]), max_size=3)):
        lower = draw(st.sampled_from([0, 2]))
        found[address] = Dest(
            address=address,
            port=0 if isinstance(key, FwmarkServiceKey) else key.port,
            forward=draw(st.sampled_from([Forward.GATE, Forward.MASQ, Forward.IPIP])),
            weight=draw(st.integers(0, 3)),
            upper=draw(st.sampled_from([lower, lower + 5])),
            lower=lower,
        )
    return VirtualService.of(svc, found.values())


@st.composite
def tables(draw: st.DrawFn) -> IpvsTable:
    keys = draw(st.sets(service_keys, max_size=4))
    return IpvsTable.of(
        *(draw(virtual_services(k)) for k in sorted(keys, key=lambda k: k.sort_key))
    )


@given(desired=tables(), actual=tables(), extra=st.sets(service_keys, max_size=2))
async def test_reconcile_converges_in_the_kernel(
    kernel: NetlinkBackend, desired: IpvsTable, actual: IpvsTable, extra: set[ServiceKey]
) -> None:
    ipvsadm("-C")
    await kernel.apply(diff(actual, IpvsTable(), set(actual.services)))
    before = await kernel.dump()
    assert before == actual

    owned = set(desired.services) | extra
    ops = diff(desired, before, owned)
    assert all(op_service_key(op) in owned for op in ops)
    await kernel.apply(ops)
    after = await kernel.dump()

    assert after.only(owned) == desired
    assert after.without(owned) == actual.without(owned)
    for key in actual.services.keys() - owned:  # foreign services keep even their counters' owner
        assert after[key].dests == actual[key].dests
    assert diff(desired, after, owned) == []
    model = FakeBackend(actual)
    await model.apply(ops)
    assert model.table == after
