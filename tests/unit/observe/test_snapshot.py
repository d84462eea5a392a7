"""The status snapshot: built from engine state and the kernel, rendered as text and JSON."""

from __future__ import annotations

import json
import time

import pytest

from ldirector.core.desired import service_key
from ldirector.core.health import RealHealth, Status
from ldirector.core.holds import Hold, HoldEntry
from ldirector.observe.render import from_json, render_text, to_json
from ldirector.observe.snapshot import CheckCounts, build
from tests.support.observe_world import R2, R3, TEXT, config, dest, snapshot, table


def test_snapshot_holds_every_real_with_its_kernel_state() -> None:
    snap = snapshot()
    web, marked = snap.virtuals
    assert (web.service, web.scheduler, web.in_kernel, web.matches) == (
        "tcp:127.0.0.100:80",
        "wrr",
        True,
        True,
    )
    r2, r3 = web.reals
    assert (r2.real, r2.health, r2.reason, r2.kernel_weight, r2.active, r2.inactive) == (
        "127.0.0.2:8080",
        "up",
        "HTTP 200 OK",
        5,
        3,
        4,
    )
    assert r2.since == 1_700_000_000.0  # no change since start
    assert (r3.health, r3.kernel_weight, r3.since, r3.reason) == (
        "down",
        None,
        1_700_000_100.0,
        "connection refused",
    )
    assert r2.checks is not None and (r2.checks.count, r2.checks.failures) == (3, 0)
    assert r3.checks is not None and r3.checks.failures == 1
    assert (marked.service, marked.in_kernel) == ("fwm:7", False)


def test_mismatch_is_reported_per_real_and_per_virtual() -> None:
    health = {R2: RealHealth(status=Status.UP), R3: RealHealth(status=Status.UP)}
    snap = build(
        config(),
        health,
        actual=table(dest(2, 5)),
        desired=table(dest(2, 5), dest(3, 1)),
        started=0.0,
        now=10.0,
        overrides={R3: HoldEntry(Hold.DRAINING, 1.0, 301.0)},
    )
    web = snap.virtuals[0]
    assert not web.matches and not snap.matches
    assert [r.matches for r in web.reals] == [True, False]
    assert (web.reals[1].manual, web.reals[1].drain_deadline) == ("draining", 301.0)
    text = render_text(snap)
    assert "KERNEL DIFFERS from desired" in text
    assert "- (want 1)" in text
    assert "draining (up)" in text


def test_text_has_one_line_per_real() -> None:
    text = render_text(snapshot())
    lines = text.splitlines()
    assert lines[0] == "tcp:127.0.0.100:80 wrr: kernel matches desired"
    assert lines[1].split() == [
        "REAL",
        "STATE",
        "WEIGHT",
        "ACTIVE",
        "INACTIVE",
        "SINCE",
        "LAST",
        "CHECK",
    ]
    assert lines[2].split()[:5] == ["127.0.0.2:8080", "up", "5", "3", "4"]
    assert lines[2].endswith("HTTP 200 OK")
    assert lines[3].split()[:5] == ["127.0.0.3:8080", "down", "-", "0", "0"]
    assert lines[4].startswith("fwm:7 ")


def test_json_is_serialisable_and_complete() -> None:
    doc = json.loads(json.dumps(to_json(snapshot())))
    assert doc["schema"] == 1
    assert doc["daemon"]["operations"] == 6 and doc["daemon"]["drift_repairs"] == 2
    real = doc["virtuals"][0]["reals"][0]
    assert real == {
        "real": "127.0.0.2:8080",
        "health": "up",
        "reason": "HTTP 200 OK",
        "since": 1_700_000_000.0,
        "manual": None,
        "drain_deadline": None,
        "kernel_weight": 5,
        "desired_weight": 5,
        "configured_weight": 5,
        "matches": True,
        "active": 3,
        "inactive": 4,
        "connections": 12,
        "in_bytes": 12000,
        "out_bytes": 60000,
        "checks": 3,
        "check_failures": 0,
    }


def test_histogram_is_cumulative() -> None:
    counts = CheckCounts()
    for elapsed in (0.001, 0.005, 0.3, 100.0):
        counts.add(True, elapsed)
    pairs = dict(counts.cumulative())
    assert pairs["0.005"] == 2  # le is inclusive
    assert pairs["0.25"] == 2 and pairs["0.5"] == 3
    assert pairs["30.0"] == 3 and pairs["+Inf"] == 4


def test_cli_renders_the_same_text_from_json() -> None:
    snap = snapshot()
    assert render_text(from_json(json.loads(json.dumps(to_json(snap))))) == render_text(snap)


def test_a_stray_destination_is_a_mismatch() -> None:
    health = {R2: RealHealth(status=Status.UP)}
    stray = dest(9, 1)
    snap = build(
        config(), health, actual=table(dest(2, 5), stray), desired=table(dest(2, 5)), started=0.0,
        now=10.0,
    )  # fmt: skip
    web = snap.virtuals[0]
    assert not web.matches and web.fallback == "127.0.0.9:8080"
    assert all(r.matches for r in web.reals)
    same = build(
        config(), health, actual=table(dest(2, 5), stray), desired=table(dest(2, 5), stray),
        started=0.0, now=10.0,
    )  # fmt: skip
    assert same.virtuals[0].matches


def test_building_reads_no_clock_and_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock() -> float:
        raise AssertionError("the snapshot read the clock: the time is an input")

    monkeypatch.setattr(time, "time", no_clock)
    other = config(TEXT.replace("127.0.0.100:80", "127.0.0.101:80"))
    health = {R2: RealHealth(status=Status.UP)}
    for cfg, now in ((config(), 5.0), (other, 6.0), (config(), 7.0)):
        snap = build(cfg, health, actual=table(), desired=table(), started=0.0, now=now)
        assert snap.generated == now
        assert snap.virtuals[0].service == str(service_key(cfg.virtuals[0]))
    with pytest.raises(TypeError):
        build(config(), health, actual=table(), desired=table(), started=0.0)  # type: ignore[call-arg]
