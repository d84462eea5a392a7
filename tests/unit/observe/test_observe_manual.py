"""Manual overrides: naming reals on the command line, the drain rule, and the saved file."""

from __future__ import annotations

import json
from ipaddress import ip_address
from pathlib import Path

import pytest
from observe_world import R2, R3, SVC, config, dest, table

from ldirector.desired import RealKey
from ldirector.ipvs.types import DestKey, Family, FwmarkServiceKey, IpvsTable
from ldirector.manual import (
    Hold,
    ManualError,
    ManualOverrides,
    ManualStore,
    Override,
    parse_real,
    parse_virtual,
    resolve,
    settle,
)


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
    "text", ["", "web", "127.0.0.1", "127.0.0.1:99999", "fwm:x", "tcp:bad:80", "[::1:80", "1:2:3"]
)
def test_bad_virtuals_get_one_line(text: str) -> None:
    with pytest.raises(ManualError) as info:
        parse_virtual(text)
    assert "\n" not in str(info.value)
    assert "not a virtual service" in str(info.value)


def test_real_forms() -> None:
    assert parse_real("127.0.0.2:8080") == (ip_address("127.0.0.2"), 8080)
    assert parse_real("[::1]:80") == (ip_address("::1"), 80)
    assert parse_real("127.0.0.2") == (ip_address("127.0.0.2"), None)
    with pytest.raises(ManualError, match="not a real server"):
        parse_real("host.example:80")


def test_resolve_finds_configured_reals_only() -> None:
    cfg = config()
    assert resolve(cfg, "127.0.0.100:80", "127.0.0.2:8080") == R2
    assert resolve(cfg, "tcp:127.0.0.100:80", "127.0.0.3") == R3
    fw = resolve(cfg, "fwm:7", "127.0.0.4:443")
    assert fw.service == FwmarkServiceKey(Family.INET, 7)
    with pytest.raises(ManualError, match=r"no virtual service tcp:127\.0\.0\.100:81"):
        resolve(cfg, "127.0.0.100:81", "127.0.0.2:8080")
    with pytest.raises(ManualError, match=r"has no real server 127\.0\.0\.9:8080"):
        resolve(cfg, "127.0.0.100:80", "127.0.0.9:8080")


def test_resolve_wants_a_port_when_the_address_is_ambiguous() -> None:
    text = "virtual=127.0.0.100:80\n\treal=127.0.0.2:81 masq\n\treal=127.0.0.2:82 masq\n"
    with pytest.raises(ManualError, match="matches several real servers"):
        resolve(config(text), "127.0.0.100:80", "127.0.0.2")


def test_drain_ends_when_connections_reach_zero() -> None:
    draining = {R2: Override(Hold.DRAINING, 100.0, 400.0)}
    assert settle(draining, table(dest(2, 0, active=1)), 200.0) == {}
    assert settle(draining, table(dest(2, 0, inactive=1)), 200.0) == {}
    assert settle(draining, table(dest(2, 0)), 200.0) == {R2: Override(Hold.DISABLED, 200.0)}


def test_drain_ends_at_its_bound_or_when_the_real_is_gone() -> None:
    draining = {R2: Override(Hold.DRAINING, 100.0, 400.0)}
    busy = table(dest(2, 0, active=9))
    assert settle(draining, busy, 399.9) == {}
    assert settle(draining, busy, 400.0) == {R2: Override(Hold.DISABLED, 400.0)}
    assert settle(draining, IpvsTable(), 150.0) == {R2: Override(Hold.DISABLED, 150.0)}


def test_disable_is_never_settled() -> None:
    assert settle({R2: Override(Hold.DISABLED, 1.0)}, IpvsTable(), 1e12) == {}


def test_overrides_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ldirectord.manual.json"
    now = [1000.0]
    first = ManualOverrides(ManualStore(path), now=lambda: now[0])
    first.disable(R2)
    first.drain(R3, 60)
    assert dict(first.holds()) == {R2: Hold.DISABLED, R3: Hold.DRAINING}
    again = ManualOverrides(ManualStore(path))
    assert again.current == {
        R2: Override(Hold.DISABLED, 1000.0),
        R3: Override(Hold.DRAINING, 1000.0, 1060.0),
    }
    assert again.enable(R2) is True
    assert again.enable(R2) is False
    assert set(ManualOverrides(ManualStore(path)).current) == {R3}


def test_settle_saves_the_finished_drain(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    overrides = ManualOverrides(ManualStore(path), now=lambda: 5.0)
    overrides.drain(R2, 300)
    assert overrides.settle(table(dest(2, 0, active=2))) == []
    assert overrides.settle(table(dest(2, 0))) == [R2]
    assert ManualOverrides(ManualStore(path)).current == {R2: Override(Hold.DISABLED, 5.0)}


def test_a_damaged_file_is_skipped_entry_by_entry(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.json"
    good = {"virtual": str(SVC), "real": "127.0.0.2:8080", "state": "disabled", "since": 1}
    bad = [{"virtual": "nope"}, {"virtual": str(SVC), "real": "127.0.0.3", "state": "x"}, 7]
    path.write_text(json.dumps({"version": 1, "overrides": [good, *bad]}))
    assert ManualOverrides(ManualStore(path)).current == {R2: Override(Hold.DISABLED, 1.0)}
    assert len([r for r in caplog.records if "ignored" in r.getMessage()]) == 3
    path.write_text("{not json")
    assert ManualStore(path).load() == {}
    assert "cannot read manual overrides" in caplog.text


def test_saved_file_is_readable_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    v6 = RealKey(SVC, DestKey(ip_address("::1"), 80))
    ManualStore(path).save({v6: Override(Hold.DISABLED, 2.0)})
    data = json.loads(path.read_text())
    assert data["overrides"] == [
        {"virtual": "tcp:127.0.0.100:80", "real": "[::1]:80", "state": "disabled", "since": 2.0}
    ]
    assert ManualStore(path).load() == {v6: Override(Hold.DISABLED, 2.0)}
