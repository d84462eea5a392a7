"""desired_table: configuration plus health to the IPVS table, rule by rule."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, ip_address

import pytest

from checks.types import ConnectSpec, Target
from ldirector.config.model import (
    CheckType,
    Config,
    Fallback,
    Real,
    ServiceProtocol,
    Virtual,
)
from ldirector.core.desired import (
    RealKey,
    desired_table,
    kernel_port,
    policy,
    real_key,
    schedflags,
    service,
    service_key,
)
from ldirector.core.health import CheckMode, RealHealth, Status
from ldirector.ipvs.types import (
    Dest,
    DestKey,
    Family,
    Forward,
    FwmarkServiceKey,
    InetServiceKey,
    IpvsTable,
    SchedFlags,
    VirtualService,
)
from ldirector.ipvs.types import Forward as F
from ldirector.ipvs.types import Protocol as P

VIP = ip_address("192.0.2.10")
UP = RealHealth(status=Status.UP)
DOWN = RealHealth(status=Status.DOWN)


def real(
    host: str,
    port: int = 8080,
    forward: Forward = Forward.MASQ,
    weight: int = 1,
    lower: int = 0,
    upper: int = 0,
) -> Real:
    address = ip_address(host)
    return Real(
        address=address,
        port=port,
        forward=forward,
        weight=weight,
        target=Target(address=address, port=port),
        negotiate=ConnectSpec(),
        connect=ConnectSpec(),
        check=ConnectSpec(),
        lower=lower,
        upper=upper,
    )


def virtual(*reals: Real, **kw: object) -> Virtual:
    fields: dict[str, object] = {
        "protocol": ServiceProtocol.TCP,
        "family": 4,
        "address": VIP,
        "port": 80,
    }
    fields.update(kw)
    return Virtual(reals=reals, **fields)  # type: ignore[arg-type]


def table(
    v: Virtual,
    health: dict[RealKey, RealHealth],
    actual: IpvsTable | None = None,
    readdquiescent: bool = False,
) -> dict[DestKey, Dest]:
    config = Config(path="t.cf", virtuals=(v,), readdquiescent=readdquiescent)
    out = desired_table(config, health, actual or IpvsTable())
    return dict(out[service_key(v)].dests)


def states(v: Virtual, *statuses: RealHealth) -> dict[RealKey, RealHealth]:
    return {real_key(v, r): s for r, s in zip(v.reals, statuses, strict=True)}


SVC = InetServiceKey(P.TCP, VIP, 80)
R1, R2 = ip_address("127.0.0.2"), ip_address("127.0.0.3")
FB = Fallback(address=ip_address("127.0.0.1"), port=80, forward=Forward.GATE)


def test_up_reals_get_their_weight_forward_and_thresholds() -> None:
    v = virtual(real("127.0.0.2", weight=5, lower=10, upper=100), real("127.0.0.3", weight=2))
    got = table(v, states(v, UP, UP))
    assert got == {
        DestKey(R1, 8080): Dest(
            address=R1, port=8080, forward=F.MASQ, weight=5, upper=100, lower=10
        ),
        DestKey(R2, 8080): Dest(address=R2, port=8080, forward=F.MASQ, weight=2),
    }


def test_not_quiescent_down_and_unknown_reals_are_absent() -> None:
    v = virtual(real("127.0.0.2"), real("127.0.0.3"), fallback=FB)
    assert table(v, states(v, UP, DOWN)) == {
        DestKey(R1, 8080): Dest(address=R1, port=8080, forward=F.MASQ)
    }
    # An unchecked real is not added (no start flap); with nothing up, the fallback is in.
    assert table(v, {}) == {
        DestKey(FB.address, 80): Dest(address=FB.address, port=80, forward=F.GATE)
    }


@pytest.mark.parametrize(
    ("readd", "present", "status", "expected_weight"),
    [
        (False, True, DOWN, 0),  # quiesced in place
        (False, False, DOWN, None),  # removed by hand: left out
        (True, False, DOWN, 0),  # readdquiescent puts it back at weight 0
        (False, True, RealHealth(), 0),  # unchecked but found at weight 0: stays quiesced
        (False, False, RealHealth(), None),  # unchecked and absent: waits for its check
        (True, False, RealHealth(), 0),
        (False, False, UP, 4),
    ],
)
def test_quiescent_and_readdquiescent(
    readd: bool, present: bool, status: RealHealth, expected_weight: int | None
) -> None:
    v = virtual(real("127.0.0.2", weight=4, upper=9), quiescent=True)
    actual = IpvsTable()
    if present:
        actual = IpvsTable.of(
            VirtualService.of(service(v), [Dest(address=R1, port=8080, forward=F.MASQ, weight=0)])
        )
    got = table(v, states(v, status), actual, readdquiescent=readd)
    weight = got[DestKey(R1, 8080)].weight if got else None
    assert weight == expected_weight
    if got:
        assert got[DestKey(R1, 8080)].upper == 9


def test_fallback_present_exactly_when_no_real_is_up() -> None:
    v = virtual(real("127.0.0.2"), real("127.0.0.3"), fallback=FB, quiescent=True)
    fb = DestKey(FB.address, 80)
    assert fb in table(v, states(v, DOWN, DOWN))
    assert fb not in table(v, states(v, DOWN, UP))
    assert fb in table(v, states(v, RealHealth(), DOWN))
    assert fb in table(virtual(fallback=FB), {})  # a virtual without reals serves the fallback


def test_checktype_off_activates_neither_reals_nor_fallback() -> None:
    # ldirectord keeps reals found serving and adds the fallback; "off" means off.
    v = virtual(real("127.0.0.2"), fallback=FB, checktype=CheckType.OFF)
    assert table(v, states(v, DOWN)) == {}
    assert policy(v).mode is CheckMode.OFF


def test_gate_and_ipip_reals_carry_the_virtual_port() -> None:
    # the kernel stores the virtual's port for gate/ipip reals of an address service.
    v = virtual(real("127.0.0.2", 8080, Forward.GATE), real("127.0.0.3", 8443, Forward.IPIP))
    got = table(v, states(v, UP, UP))
    assert set(got) == {DestKey(R1, 80), DestKey(R2, 80)}
    assert got[DestKey(R2, 80)].forward is F.IPIP
    assert real_key(v, v.reals[0]) == RealKey(SVC, DestKey(R1, 80))
    fw = virtual(
        real("127.0.0.2", 8080, Forward.GATE),
        protocol=ServiceProtocol.FWM,
        address=None,
        port=0,
        fwmark=7,
    )
    assert real_key(fw, fw.reals[0]).dest == DestKey(R1, 8080)  # firewall marks keep it
    assert kernel_port(v, 8080, Forward.MASQ) == 8080


def test_reals_the_kernel_cannot_tell_apart_keep_the_first() -> None:
    v = virtual(
        real("127.0.0.2", 8080, Forward.GATE, weight=3), real("127.0.0.2", 9090, Forward.GATE)
    )
    got = table(v, {real_key(v, v.reals[0]): UP})
    assert list(got.values()) == [Dest(address=R1, port=80, forward=F.GATE, weight=3)]


def test_service_attributes() -> None:
    v = virtual(
        scheduler="mh",
        persistent=300,
        netmask=IPv4Address("255.255.255.0"),
        schedflags=("mh-fallback,mh-port",),
    )
    s = service(v)
    assert (s.scheduler, s.persistent, s.netmask) == ("mh", 300, 24)
    assert s.flags == SchedFlags.SCHED1 | SchedFlags.SCHED2
    # no persistence: the netmask is not sent (ldirectord only emits -M with -p)
    assert service(virtual(netmask=IPv4Address("255.255.255.0"))).netmask == 32
    # ops only exists for UDP services
    assert service(virtual(ops=True)).flags == SchedFlags.NONE
    udp = virtual(protocol=ServiceProtocol.UDP, port=53, ops=True)
    assert service(udp).flags == SchedFlags.ONEPACKET
    assert service_key(udp) == InetServiceKey(P.UDP, VIP, 53)
    v6 = virtual(
        protocol=ServiceProtocol.FWM,
        family=6,
        address=None,
        port=0,
        fwmark=2,
        persistent=60,
        netmask=64,
    )
    assert service_key(v6) == FwmarkServiceKey(Family.INET6, 2)
    assert service(v6).netmask == 64
    assert schedflags(("flag-1", "flag-3", "bogus")) == SchedFlags.SCHED1 | SchedFlags.SCHED3


def test_several_virtuals_and_weight_zero_config() -> None:
    a = virtual(real("127.0.0.2", weight=0))
    b = virtual(real("127.0.0.3"), port=443)
    config = Config(path="t.cf", virtuals=(a, b))
    health = {**states(a, UP), **states(b, DOWN)}
    out = desired_table(config, health, IpvsTable())
    assert [vs.key for vs in out] == [SVC, replace(SVC, port=443)]
    assert out[SVC].dests[DestKey(R1, 8080)].weight == 0
    assert dict(out[replace(SVC, port=443)].dests) == {}
