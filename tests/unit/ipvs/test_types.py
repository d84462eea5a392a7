"""The IPVS model: key text round-trips, netmask normalisation, what equality compares."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldirector.ipvs.types import (
    Dest,
    DestCounters,
    DestKey,
    Family,
    ForeignDest,
    ForeignService,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    ServiceKey,
    Stats,
    VirtualService,
    parse_service_key,
)

service_keys: st.SearchStrategy[ServiceKey] = st.one_of(
    st.builds(
        InetServiceKey,
        st.sampled_from(list(Protocol)),
        st.sampled_from([IPv4Address("127.0.0.1"), IPv6Address("::1")]),
        st.integers(0, 65535),
    ),
    st.builds(FwmarkServiceKey, st.sampled_from(list(Family)), st.integers(1, 2**32 - 1)),
)


@given(key=service_keys)
def test_service_key_text_round_trips(key: ServiceKey) -> None:
    assert parse_service_key(str(key)) == key


def test_service_key_text_matches_ldirectord_virtual_ids() -> None:
    assert str(InetServiceKey(Protocol.TCP, IPv4Address("127.0.0.1"), 80)) == "tcp:127.0.0.1:80"
    assert str(InetServiceKey(Protocol.UDP, IPv6Address("::1"), 53)) == "udp:[::1]:53"
    assert str(FwmarkServiceKey(Family.INET, 100)) == "fwm:100"
    assert str(FwmarkServiceKey(Family.INET6, 200)) == "fwm6:200"


@pytest.mark.parametrize(
    "text", ["", "tcp", "icmp:1.2.3.4:1", "tcp:1.2.3.4:70000", "fwm:0", "fwm:x"]
)
def test_bad_service_key_text(text: str) -> None:
    with pytest.raises(ValueError, match="not an IPVS service key"):
        parse_service_key(text)


def test_netmask_defaults_to_full_prefix() -> None:
    v4 = InetServiceKey(Protocol.TCP, IPv4Address("127.0.0.1"), 80)
    assert Service(key=v4) == Service(key=v4, netmask=32)
    assert Service(key=FwmarkServiceKey(Family.INET6, 1)).prefix == 128


def test_counters_are_not_part_of_equality() -> None:
    key = FwmarkServiceKey(Family.INET, 1)
    plain = Dest(address=IPv4Address("127.0.0.2"), port=0)
    busy = Dest(address=IPv4Address("127.0.0.2"), port=0, counters=DestCounters(active_conns=3))
    assert plain == busy
    assert Service(key=key) == Service(key=key, stats=Stats(conns=1))


def test_duplicates_are_rejected() -> None:
    key = FwmarkServiceKey(Family.INET, 1)
    dest = Dest(address=IPv4Address("127.0.0.2"), port=0)
    with pytest.raises(ValueError, match=r"duplicate destination 127\.0\.0\.2:0"):
        VirtualService.of(Service(key=key), [dest, dest])
    with pytest.raises(ValueError, match="duplicate service fwm:1"):
        IpvsTable.of(VirtualService.of(Service(key=key)), VirtualService.of(Service(key=key)))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: InetServiceKey(Protocol.TCP, IPv4Address("127.0.0.1"), 65536), "port 65536"),
        (lambda: FwmarkServiceKey(Family.INET, 0), "firewall mark 0 out of range"),
        (lambda: Dest(address=IPv4Address("127.0.0.2"), port=-1), "port -1 out of range"),
        (lambda: Dest(address=IPv4Address("127.0.0.2"), port=0, upper=-1), "threshold u:-1"),
        (lambda: Dest(address=IPv4Address("127.0.0.2"), port=0, weight=2**31), "weight"),
    ],
)
def test_values_without_an_encoding_are_refused_early(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


FOREIGN_KEY = InetServiceKey(Protocol.TCP, IPv4Address("127.0.0.9"), 80)
ODD_SERVICES = [
    ForeignService(None, "unknown address family 99", b"\x01"),
    ForeignService(FOREIGN_KEY, "netmask attribute is 2 bytes, not 4", b"\x02"),
]
ODD_REALS = [
    ForeignDest(None, "port attribute is 3 bytes, not 2", b"\x03"),
    ForeignDest(DestKey(IPv4Address("127.0.0.3"), 80), "unknown forwarding method 4", b"\x04"),
]


def test_foreign_entries_compare_whatever_order_they_were_listed_in() -> None:
    svc = Service(key=FwmarkServiceKey(Family.INET, 1))
    one = IpvsTable.of(VirtualService.of(svc, (), ODD_REALS), foreign=ODD_SERVICES)
    other = IpvsTable.of(
        VirtualService.of(svc, (), reversed(ODD_REALS)), foreign=reversed(ODD_SERVICES)
    )
    assert one == other
    assert one != IpvsTable.of(VirtualService.of(svc), foreign=ODD_SERVICES)


def test_foreign_services_are_not_services() -> None:
    table = IpvsTable.of(foreign=ODD_SERVICES)
    assert len(table) == 0
    assert FOREIGN_KEY not in table
    assert list(table) == []


def test_sub_tables_keep_the_foreign_services_of_their_keys() -> None:
    table = IpvsTable.of(foreign=ODD_SERVICES)
    assert table.only([FOREIGN_KEY]).foreign == (ODD_SERVICES[1],)
    assert table.without([FOREIGN_KEY]).foreign == (ODD_SERVICES[0],)


@pytest.mark.parametrize(
    "text", ["tcp:127.0.0.1:\u0668\u0660", "tcp:127.0.0.1: 80", "fwm:\u0667", "fwm:+7", "fwm:"]
)
def test_service_key_numbers_are_ascii_digits_only(text: str) -> None:
    with pytest.raises(ValueError, match="not an IPVS service key"):
        parse_service_key(text)
