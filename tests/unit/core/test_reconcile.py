"""reconcile.diff: convergence, ownership and op order, by example and by property."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldirector.core.reconcile import diff
from ldirector.ipvs.ops import (
    AddDest,
    AddService,
    DelDest,
    DelService,
    EditDest,
    EditService,
    op_service_key,
)
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

# Strategies: small pools, so keys collide often.
V4: list[IPv4Address] = [IPv4Address("127.0.10.1"), IPv4Address("127.0.10.2")]
V6: list[IPv6Address] = [IPv6Address("fd00::1"), IPv6Address("fd00::2")]
REAL4: list[IPv4Address] = [IPv4Address(f"127.0.20.{i}") for i in range(1, 5)]
REAL6: list[IPv6Address] = [IPv6Address(f"fd00:1::{i}") for i in range(1, 5)]

service_keys: st.SearchStrategy[ServiceKey] = st.one_of(
    st.builds(
        InetServiceKey,
        st.sampled_from(list(Protocol)),
        st.sampled_from(V4 + V6),
        st.sampled_from([80, 443]),
    ),
    st.builds(FwmarkServiceKey, st.sampled_from(list(Family)), st.sampled_from([1, 2])),
)


@st.composite
def services(draw: st.DrawFn, key: ServiceKey) -> Service:
    """A valid service for ``key``."""
    persistent = draw(st.none() | st.sampled_from([0, 300, 600]))
    max_prefix = key.family.max_prefix
    netmask = draw(st.sampled_from([max_prefix, max_prefix // 2 + 8]))
    return Service(
        key=key,
        scheduler=draw(st.sampled_from(["wlc", "wrr", "rr", "sh", "mh"])),
        flags=draw(st.sampled_from(list(SchedFlags))),
        persistent=persistent,
        netmask=netmask if persistent is not None else None,
    )


@st.composite
def dests(draw: st.DrawFn, key: ServiceKey) -> Dest:
    """A valid destination for a service of ``key``'s family."""
    pool: list[IPv4Address] | list[IPv6Address] = REAL4 if key.family is Family.INET else REAL6
    lower = draw(st.sampled_from([0, 5]))
    return Dest(
        address=draw(st.sampled_from(list[IPAddress](pool))),
        port=0 if isinstance(key, FwmarkServiceKey) else draw(st.sampled_from([80, 8080])),
        forward=draw(st.sampled_from([Forward.GATE, Forward.MASQ, Forward.IPIP])),
        weight=draw(st.integers(0, 3)),
        upper=draw(st.sampled_from([lower, lower + 10])),
        lower=lower,
    )


@st.composite
def virtual_services(draw: st.DrawFn, key: ServiceKey) -> VirtualService:
    """A service with up to four destinations (duplicates dropped)."""
    found = {}
    for dest in draw(st.lists(dests(key), max_size=4)):
        found[dest.key] = dest
    return VirtualService.of(draw(services(key)), found.values())


@st.composite
def tables(draw: st.DrawFn) -> IpvsTable:
    """A table of up to five services."""
    keys = draw(st.sets(service_keys, max_size=5))
    return IpvsTable.of(
        *(draw(virtual_services(k)) for k in sorted(keys, key=lambda k: k.sort_key))
    )


WEB = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.1"), 80)
FOREIGN = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.9"), 80)


def real(last: int, weight: int = 1) -> Dest:
    return Dest(address=IPv4Address(f"127.0.20.{last}"), port=80, weight=weight)


@given(table=tables(), extra=st.sets(service_keys, max_size=3))
def test_identical_tables_need_no_ops(table: IpvsTable, extra: set[ServiceKey]) -> None:
    assert diff(table, table, set(table.services) | extra) == []


@given(desired=tables(), actual=tables(), extra=st.sets(service_keys, max_size=3))
async def test_applying_diff_converges_owned_and_spares_the_rest(
    desired: IpvsTable, actual: IpvsTable, extra: set[ServiceKey]
) -> None:
    owned = set(desired.services) | extra
    ops = diff(desired, actual, owned)
    assert all(op_service_key(op) in owned for op in ops)
    fake = FakeBackend(actual)
    await fake.apply(ops)  # raises ApplyError if any op were refused
    result = await fake.dump()
    assert result.only(owned) == desired
    assert result.without(owned) == actual.without(owned)
    assert diff(desired, result, owned) == []


def test_foreign_services_are_never_named() -> None:
    actual = IpvsTable.of(VirtualService.of(Service(key=FOREIGN), [real(1)]))
    assert diff(IpvsTable(), actual, {WEB}) == []


def test_owned_service_missing_from_desired_is_deleted_without_its_dests() -> None:
    actual = IpvsTable.of(VirtualService.of(Service(key=WEB), [real(1), real(2)]))
    assert diff(IpvsTable(), actual, {WEB}) == [DelService(WEB)]


def test_undesired_reals_are_purged_inside_an_owned_service() -> None:
    actual = IpvsTable.of(VirtualService.of(Service(key=WEB), [real(1), real(9)]))
    desired = IpvsTable.of(VirtualService.of(Service(key=WEB), [real(1)]))
    assert diff(desired, actual, {WEB}) == [DelDest(WEB, real(9).key)]


def test_op_order_adds_before_deletes() -> None:
    other = InetServiceKey(Protocol.UDP, IPv4Address("127.0.10.1"), 53)
    gone = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.2"), 80)
    actual = IpvsTable.of(
        VirtualService.of(Service(key=WEB, scheduler="rr"), [real(1), real(2, weight=5)]),
        VirtualService.of(Service(key=gone)),
    )
    desired = IpvsTable.of(
        VirtualService.of(Service(key=WEB, scheduler="wrr"), [real(2, weight=0), real(3)]),
        VirtualService.of(Service(key=other), [real(4)]),
    )
    assert diff(desired, actual, {WEB, other, gone}) == [
        AddService(Service(key=other)),  # udp :53 sorts before tcp :80 (port, then protocol)
        EditService(Service(key=WEB, scheduler="wrr")),
        AddDest(other, real(4)),
        EditDest(WEB, real(2, weight=0)),
        AddDest(WEB, real(3)),
        DelDest(WEB, real(1).key),
        DelService(gone),
    ]


def test_counters_do_not_cause_edits() -> None:
    from ldirector.ipvs.types import DestCounters, Stats

    busy = Dest(
        address=IPv4Address("127.0.20.1"),
        port=80,
        counters=DestCounters(active_conns=7, stats=Stats(conns=9)),
    )
    actual = IpvsTable.of(VirtualService.of(Service(key=WEB, stats=Stats(conns=9)), [busy]))
    desired = IpvsTable.of(VirtualService.of(Service(key=WEB), [real(1)]))
    assert diff(desired, actual, {WEB}) == []


def test_desired_service_outside_owned_is_a_programming_error() -> None:
    desired = IpvsTable.of(VirtualService.of(Service(key=WEB)))
    with pytest.raises(ValueError, match=r"not in the owned set: tcp:127\.0\.10\.1:80"):
        diff(desired, IpvsTable(), set())
