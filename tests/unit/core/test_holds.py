"""Operator holds: naming reals on the command line, when a drain ends, and what holds do to the
desired table (disabled is out, draining is weight 0, neither is up)."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from ldirector.core.desired import desired_table, real_key
from ldirector.core.health import RealHealth, Status
from ldirector.core.holds import (
    Hold,
    HoldEntry,
    HoldError,
    parse_real,
    parse_virtual,
    resolve,
    settle,
)
from ldirector.core.layout import Layout
from ldirector.ipvs.types import Family, FwmarkServiceKey, IpvsTable
from tests.support.observe_world import R2, R3, config, dest, table

TEXT = """\
fallback=127.0.0.1:80 gate
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq 2
	service=http
	quiescent={quiescent}
"""
UP = {R2: RealHealth(status=Status.UP), R3: RealHealth(status=Status.UP)}


def weights(table: IpvsTable) -> dict[str, int]:
    (vs,) = list(table)
    return {str(k): d.weight for k, d in vs.dests.items()}


def test_no_holds_is_todays_table() -> None:
    cfg = config(TEXT.format(quiescent="no"))
    assert desired_table(cfg, UP, IpvsTable(), {}) == desired_table(cfg, UP, IpvsTable())


def test_disabled_is_out_even_when_quiescent() -> None:
    for quiescent in ("yes", "no"):
        cfg = config(TEXT.format(quiescent=quiescent))
        table = desired_table(cfg, UP, IpvsTable(), {R3: "disabled"})
        assert weights(table) == {"127.0.0.2:8080": 5}


def test_draining_is_weight_zero_and_not_up() -> None:
    cfg = config(TEXT.format(quiescent="no"))
    assert weights(desired_table(cfg, UP, IpvsTable(), {R2: "draining"})) == {
        "127.0.0.2:8080": 0,
        "127.0.0.3:8080": 2,
    }
    # Nothing left serving: the fallback comes in beside the draining real.
    holds = {R2: "draining", R3: "disabled"}
    assert weights(desired_table(cfg, UP, IpvsTable(), holds)) == {
        "127.0.0.2:8080": 0,
        "127.0.0.1:80": 1,
    }


def test_draining_a_down_real_leaves_it_out() -> None:
    cfg = config(TEXT.format(quiescent="no"))
    health = {R2: RealHealth(status=Status.DOWN), R3: RealHealth(status=Status.UP)}
    assert weights(desired_table(cfg, health, IpvsTable(), {R2: "draining"})) == {
        "127.0.0.3:8080": 2
    }


def test_cached_layout_follows_holds() -> None:
    cfg = config(TEXT.format(quiescent="yes"))
    reals = {real_key(v, r): (v, r) for v in cfg.virtuals for r in v.reals}
    layout = Layout(cfg, reals)
    for holds in ({}, {R2: "draining"}, {R2: "disabled"}, {}, {R3: "draining", R2: "disabled"}):
        want = desired_table(cfg, UP, IpvsTable(), holds)
        assert layout.desired(UP, IpvsTable(), holds) == want


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.100:80", "tcp:127.0.0.100:80"),
        ("tcp:127.0.0.100:80", "tcp:127.0.0.100:80"),
        ("UDP:127.0.0.1:53", "udp:127.0.0.1:53"),
        ("[::1]:80", "tcp:[::1]:80"),
        ("udp:[::1]:53", "udp:[::1]:53"),
        ("fwm:100", "fwm:100"),
        ("100", "fwm:100"),
        ("fwm6:7", "fwm6:7"),
    ],
)
def test_virtual_forms(text: str, expected: str) -> None:
    assert str(parse_virtual(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "web",
        "127.0.0.1",
        "127.0.0.1:99999",
        "fwm:x",
        "tcp:bad:80",
        "[::1:80",
        "1:2:3",
        "127.0.0.1:\u0668\u0660",
        "127.0.0.1:+80",
        "127.0.0.1: 80",
        "\u0667",
    ],
)
def test_bad_virtuals_get_one_line(text: str) -> None:
    with pytest.raises(HoldError) as info:
        parse_virtual(text)
    assert "\n" not in str(info.value)
    assert "not a virtual service" in str(info.value)


def test_real_forms() -> None:
    assert parse_real("127.0.0.2:8080") == (ip_address("127.0.0.2"), 8080)
    assert parse_real("[::1]:80") == (ip_address("::1"), 80)
    assert parse_real("127.0.0.2") == (ip_address("127.0.0.2"), None)
    with pytest.raises(HoldError, match="not a real server"):
        parse_real("host.example:80")
    for port in ("\u0668\u0660", "+80", " 80"):
        with pytest.raises(HoldError, match="not a real server"):
            parse_real(f"127.0.0.2:{port}")


def test_resolve_finds_configured_reals_only() -> None:
    cfg = config()
    assert resolve(cfg, "127.0.0.100:80", "127.0.0.2:8080") == R2
    assert resolve(cfg, "tcp:127.0.0.100:80", "127.0.0.3") == R3
    fw = resolve(cfg, "fwm:7", "127.0.0.4:443")
    assert fw.service == FwmarkServiceKey(Family.INET, 7)
    with pytest.raises(HoldError, match=r"no virtual service tcp:127\.0\.0\.100:81"):
        resolve(cfg, "127.0.0.100:81", "127.0.0.2:8080")
    with pytest.raises(HoldError, match=r"has no real server 127\.0\.0\.9:8080"):
        resolve(cfg, "127.0.0.100:80", "127.0.0.9:8080")


def test_resolve_wants_a_port_when_the_address_is_ambiguous() -> None:
    text = "virtual=127.0.0.100:80\n\treal=127.0.0.2:81 masq\n\treal=127.0.0.2:82 masq\n"
    with pytest.raises(HoldError, match="matches several real servers"):
        resolve(config(text), "127.0.0.100:80", "127.0.0.2")


def test_drain_ends_when_connections_reach_zero() -> None:
    draining = {R2: HoldEntry(Hold.DRAINING, 100.0, 400.0)}
    assert settle(draining, table(dest(2, 0, active=1)), 200.0) == {}
    assert settle(draining, table(dest(2, 0, inactive=1)), 200.0) == {}
    assert settle(draining, table(dest(2, 0)), 200.0) == {R2: HoldEntry(Hold.DISABLED, 200.0)}


def test_drain_ends_at_its_bound_or_when_the_real_is_gone() -> None:
    draining = {R2: HoldEntry(Hold.DRAINING, 100.0, 400.0)}
    busy = table(dest(2, 0, active=9))
    assert settle(draining, busy, 399.9) == {}
    assert settle(draining, busy, 400.0) == {R2: HoldEntry(Hold.DISABLED, 400.0)}
    assert settle(draining, IpvsTable(), 150.0) == {R2: HoldEntry(Hold.DISABLED, 150.0)}


def test_disable_is_never_settled() -> None:
    assert settle({R2: HoldEntry(Hold.DISABLED, 1.0)}, IpvsTable(), 1e12) == {}


def test_a_partial_table_settles_only_the_drains_it_shows() -> None:
    draining = {R2: HoldEntry(Hold.DRAINING, 100.0, 400.0)}
    # A table of other services says nothing about R2's connections: its drain goes on.
    assert settle(draining, IpvsTable(), 150.0, within=()) == {}
    shown = {R2.service}
    assert settle(draining, table(dest(2, 0)), 150.0, within=shown) == {
        R2: HoldEntry(Hold.DISABLED, 150.0)
    }
