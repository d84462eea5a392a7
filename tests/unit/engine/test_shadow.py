"""The shadow engine on the fake kernel: it checks and compares, and writes nothing."""

from __future__ import annotations

import logging
import random
from collections.abc import Collection
from ipaddress import ip_address
from pathlib import Path

import pytest

from checks.types import CheckSpec, Result, Target
from ldirector.core.divergence import Kind
from ldirector.engine.shadow import (
    ReadOnlyBackend,
    ShadowEngine,
    ShadowMonitor,
    shadow_config,
    tolerance,
    would,
)
from ldirector.ipvs.backend import IpvsBackend, IpvsError
from ldirector.ipvs.ops import AddDest, DelDest, EditService
from ldirector.ipvs.types import (
    Dest,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    ServiceKey,
)
from ldirector.testing import FakeBackend, FakeClock
from tests.support.engine_world import World, config

TEXT = """\
checktimeout=3
checkinterval=5
quiescent=no
fallback=127.0.0.1:80 gate

virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq
	service=http
	request="index.html"
	receive="Test Page"
	scheduler=wrr
	fallbackcommand="/bin/true"
	monitorfile="/tmp/never-written"
"""
SVC = "tcp:127.0.0.100:80"


async def live_table(tmp: Path) -> IpvsTable:
    """The table a live manager keeps with every real up."""
    w = World(TEXT, tmp, up={"127.0.0.2:8080": True, "127.0.0.3:8080": True})
    await w.engine.start()
    await w.clock.advance(1)
    return w.backend.table  # before a stop, which would clean it up


class Shadow:
    def __init__(self, kernel: IpvsBackend | None, up: dict[str, bool]) -> None:
        self.clock = FakeClock()
        self.up = up
        self.reader = ReadOnlyBackend(lambda: kernel or _NoIpvs())
        self.engine = ShadowEngine(
            config(TEXT),
            self.reader,
            clock=self.clock,
            run=self.check,
            rng=random.Random(5),
            reconcile_spacing=0.0,
        )

    async def check(self, target: Target, spec: CheckSpec) -> Result:
        ok = self.up.get(str(target), False)
        return Result(ok, "HTTP 200 OK" if ok else "connection refused")


class _NoIpvs(FakeBackend):
    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        raise IpvsError("Protocol not available: is the ip_vs module loaded?")


async def test_shadow_writes_nothing_and_says_what_it_would_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kernel = FakeBackend(await live_table(tmp_path))
    before = kernel.table
    s = Shadow(kernel, up={"127.0.0.2:8080": True})  # ldirector sees .3 down
    caplog.set_level(logging.INFO)
    await s.engine.start()
    for _ in range(4):  # several resyncs: the same op is told once
        await s.clock.advance(11)
    await s.engine.shutdown()
    assert kernel.batches == []
    assert kernel.table == before
    would_lines = [r.getMessage() for r in caplog.records if "would" in r.getMessage()]
    assert would_lines == ["shadow: would delete real server: 127.0.0.3:8080 (127.0.0.100:80)"]
    assert not any(r.getMessage().startswith("Deleted real server") for r in caplog.records)


async def test_shadow_reports_why_the_kernel_differs(tmp_path: Path) -> None:
    kernel = FakeBackend(await live_table(tmp_path))
    s = Shadow(kernel, up={"127.0.0.2:8080": True})
    await s.engine.start()
    await s.clock.advance(6)  # reals the kernel serves are first checked within a round
    await s.engine.monitor.compare()
    snap = await s.engine.snapshot()
    await s.engine.shutdown()
    report = snap.shadow
    assert report is not None and not report.agrees
    items = {i.item: i for i in report.items}
    real = items[f"{SVC} 127.0.0.3:8080"]
    assert not real.agrees
    assert real.cause.startswith("kernel holds 127.0.0.3:8080 at weight 1; ldirector: down since")
    assert real.cause.endswith("connection refused, wants it out")
    assert items[f"{SVC} 127.0.0.2:8080"].agrees
    assert [(e.item, e.kind) for e in report.episodes] == [
        (SVC, Kind.ONGOING),
        (f"{SVC} 127.0.0.3:8080", Kind.ONGOING),
    ]


async def test_shadow_agrees_with_a_kernel_kept_as_it_wants(tmp_path: Path) -> None:
    kernel = FakeBackend(await live_table(tmp_path))
    s = Shadow(kernel, up={"127.0.0.2:8080": True, "127.0.0.3:8080": True})
    await s.engine.start()
    await s.clock.advance(1)
    await s.engine.monitor.compare()
    report = (await s.engine.snapshot()).shadow
    await s.engine.shutdown()
    assert report is not None and report.agrees and report.episodes == ()
    assert kernel.batches == []


async def test_shadow_without_ipvs_shows_desired_table_and_health(
    caplog: pytest.LogCaptureFixture,
) -> None:
    s = Shadow(None, up={"127.0.0.2:8080": True})
    await s.engine.start()
    await s.clock.advance(1)
    await s.engine.monitor.compare()
    snap = await s.engine.snapshot()
    await s.engine.shutdown()
    assert snap.no_kernel is not None and "ip_vs" in snap.no_kernel
    (virtual,) = snap.virtuals
    weights = {r.real: (r.health, r.desired_weight) for r in virtual.reals}
    assert weights == {"127.0.0.2:8080": ("up", 5), "127.0.0.3:8080": ("down", None)}
    assert snap.shadow is not None and snap.shadow.items == ()  # nothing to compare with
    assert sum("cannot read the IPVS table" in r.getMessage() for r in caplog.records) == 1


def test_shadow_config_has_no_fallbackcommand_nor_monitorfile() -> None:
    (virtual,) = shadow_config(config(TEXT)).virtuals
    assert (virtual.fallbackcommand, virtual.monitorfile, virtual.cleanstop) == ((), None, False)


def test_tolerance_is_both_detection_windows_and_the_comparison() -> None:
    assert tolerance(config(TEXT), interval=1.0) == {SVC: 2 * (5 + 3) * 1 + 1.0}


def test_would_rewords_ldirectord_lines() -> None:
    assert would("Added real server: 1.2.3.4:80 (5.6.7.8:80) (Weight set to 1)") == (
        "shadow: would add real server: 1.2.3.4:80 (5.6.7.8:80) (Weight set to 1)"
    )
    assert would("Quiescent real server: a (b) (Weight set to 0)").startswith(
        "shadow: would quiesce real server: a"
    )
    assert would("Something else") == "shadow: would: Something else"


async def test_every_line_about_the_table_says_would(caplog: pytest.LogCaptureFixture) -> None:
    kernel = FakeBackend()  # an empty table: a live start would create the service
    s = Shadow(kernel, up={"127.0.0.2:8080": True})
    caplog.set_level(logging.INFO)
    await s.engine.start()
    await s.clock.advance(1)
    await s.engine.shutdown()
    told = [r.getMessage() for r in caplog.records if "server" in r.getMessage()]
    assert "shadow: would add virtual server: 127.0.0.100:80" in told
    assert not [m for m in told if m.startswith(("Added", "Deleted", "Restored"))], told
    assert kernel.batches == []


async def virtual_cause(kernel: FakeBackend, up: dict[str, bool]) -> str:
    """The cause the shadow gives for the virtual, its reals agreeing or not."""
    s = Shadow(kernel, up=up)
    await s.engine.start()
    await s.clock.advance(6)
    await s.engine.monitor.compare()
    report = (await s.engine.snapshot()).shadow
    await s.engine.shutdown()
    assert report is not None
    return next(i.cause for i in report.items if i.item == SVC)


ALL_UP = {"127.0.0.2:8080": True, "127.0.0.3:8080": True}
FALLBACK = Dest(address=ip_address("127.0.0.1"), port=80, forward=Forward.GATE, weight=1)
KEY = InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)


async def test_shadow_says_the_kernel_holds_a_fallback_it_wants_out(tmp_path: Path) -> None:
    kernel = FakeBackend(await live_table(tmp_path))
    await kernel.apply([AddDest(KEY, FALLBACK)])  # a fallback left in beside serving reals
    cause = await virtual_cause(kernel, ALL_UP)
    assert cause == "kernel holds the fallback 127.0.0.1:80; ldirector wants it out (a real serves)"


async def test_shadow_says_the_kernel_lacks_a_fallback_it_wants_in(tmp_path: Path) -> None:
    kernel = FakeBackend(await live_table(tmp_path))
    # The reals are gone (down for the live manager too), and nothing brought the fallback in.
    dests = kernel.table.services[KEY].dests
    await kernel.apply([DelDest(KEY, key) for key in dests])
    cause = await virtual_cause(kernel, {})
    assert cause == "kernel does not hold the fallback 127.0.0.1:80; ldirector wants it in"


async def test_shadow_names_the_service_settings_that_differ(tmp_path: Path) -> None:
    kernel = FakeBackend(await live_table(tmp_path))
    edited = Service(key=KEY, scheduler="rr", persistent=300)
    await kernel.apply([EditService(edited)])
    cause = await virtual_cause(kernel, ALL_UP)
    assert cause == (
        "kernel holds the service with scheduler rr, persistent 300 s, netmask /32;"
        " ldirector wants scheduler wrr, no persistence, netmask /32"
    )


async def kind_later(tmp: Path, reload: bool, later: float) -> tuple[Kind, ShadowMonitor]:
    """The kind of the divergence on .3 ``later`` seconds after it began, with or without a
    reload of the shadow just before."""
    kernel = FakeBackend(await live_table(tmp))
    s = Shadow(kernel, up={"127.0.0.2:8080": True})  # ldirector sees .3 down
    wall = [1000.0]
    s.engine.monitor = ShadowMonitor(s.engine, wall=lambda: wall[0])
    await s.engine.start()
    if reload:
        await s.engine.reload(config(TEXT))
    await s.clock.advance(6)
    await s.engine.monitor.compare()  # the divergence begins
    wall[0] += later
    report = s.engine.monitor.report()
    await s.engine.shutdown()
    return {e.item: e.kind for e in report.episodes}[f"{SVC} 127.0.0.3:8080"], s.engine.monitor


async def test_a_divergence_right_after_a_reload_gets_twice_the_tolerance(tmp_path: Path) -> None:
    """ldirectord re-runs its whole start and a check round at a reload: a real it adds late
    then is timing, where the same divergence at any other moment is a disagreement."""
    tol = tolerance(config(TEXT))[SVC]
    plain, _ = await kind_later(tmp_path / "plain", False, 1.5 * tol)
    reloaded, monitor = await kind_later(tmp_path / "reloaded", True, 1.5 * tol)
    assert (plain, reloaded) == (Kind.DISAGREEMENT, Kind.ONGOING)
    assert monitor.tolerances(1000.0)[SVC] == 2 * tol
    # A divergence that begins later than one tolerance after the reload gets the usual one.
    assert monitor.tolerances(1000.0 + tol + 1)[SVC] == tol
