"""The IPVS model: key text round-trips, netmask normalisation, counters outside equality."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ldirector.ipvs.types import (
    Dest,
    DestCounters,
    Family,
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
