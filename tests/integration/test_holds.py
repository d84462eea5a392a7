"""Disable, drain and enable end to end: CLI -> control socket -> engine -> fake kernel table,
and the holds kept across a restart of the daemon."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest

from checks.types import CheckSpec, Result, Target
from ldirector.config import loads
from ldirector.control.server import observing
from ldirector.engine import Engine
from ldirector.ipvs.ops import DelDest
from ldirector.ipvs.types import (
    DestCounters,
    DestKey,
    InetServiceKey,
    IpvsTable,
    Protocol,
    ServiceKey,
    VirtualService,
)
from ldirector.state.holds import Holds, HoldsStore
from ldirector.state.owned import OwnedStore
from ldirector.testing import FakeBackend, FakeClock
from tests.support.cli import control_verb

TEXT = """\
checkinterval=5
quiescent=no
fallback=127.0.0.1:80 gate
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 5
	real=127.0.0.3:8080 masq 2
	service=http
	request="index.html"
	receive="Test Page"
"""
VIP = "127.0.0.100:80"
SVC = InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)


class CountingBackend(FakeBackend):
    """The fake kernel, reporting connection counts a test sets per real (by address)."""

    def __init__(self) -> None:
        super().__init__()
        self.conns: dict[str, tuple[int, int]] = {}

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        return IpvsTable.of(
            *(
                VirtualService.of(
                    vs.service,
                    [
                        replace(d, counters=DestCounters(active_conns=a, inactive_conns=i))
                        for d in vs.dests.values()
                        for a, i in [self.conns.get(str(d.key), (0, 0))]
                    ],
                )
                for vs in self.table
                if only is None or vs.key in only
            )
        )


class Daemon:
    """One daemon's life on a shared fake kernel and state directory."""

    def __init__(
        self,
        backend: CountingBackend,
        state: Path,
        now: list[float],
        run: Callable[[Target, CheckSpec], Awaitable[Result]] | None = None,
    ) -> None:
        self.clock = FakeClock()
        self.engine = Engine(
            loads(TEXT, "t.cf"),
            backend,
            clock=self.clock,
            run=run or self.check,
            owned=OwnedStore(state / "t.cf.owned"),
            holds=Holds(HoldsStore(state / "t.cf.manual.json"), now=lambda: now[0]),
            resolver=self._no_name,
            rng=random.Random(3),
            reconcile_spacing=0.0,
        )

    @staticmethod
    async def _no_name(address: object) -> str | None:
        return None

    async def check(self, target: Target, spec: CheckSpec) -> Result:
        return Result(True, "HTTP 200 OK", 0.01)


def reals(backend: FakeBackend) -> dict[str, int]:
    (vs,) = list(backend.table)
    return {str(k): d.weight for k, d in vs.dests.items()}


async def cli(directory: Path, *argv: str) -> tuple[int | None, str, str]:
    return await asyncio.to_thread(control_verb, ["t.cf", *argv], directory)


async def test_disable_drain_enable_through_the_socket(tmp_path: Path) -> None:
    backend, now, run = CountingBackend(), [1000.0], tmp_path / "run"
    daemon = Daemon(backend, tmp_path / "state", now)
    await daemon.engine.start()
    await daemon.clock.advance(0.1)
    assert reals(backend) == {"127.0.0.2:8080": 5, "127.0.0.3:8080": 2}
    async with observing(daemon.engine, cfgname="t.cf", directory=run):
        code, out, _ = await cli(run, "status", "-v")
        assert code == 0
        assert "tcp:127.0.0.100:80 wrr: kernel matches desired" in out
        assert [line.split()[:3] for line in out.splitlines()[2:4]] == [
            ["127.0.0.2:8080", "up", "5"],
            ["127.0.0.3:8080", "up", "2"],
        ]

        assert (await cli(run, "disable", VIP, "127.0.0.3"))[:2] == (
            0,
            "disabled 127.0.0.3:8080 (tcp:127.0.0.100:80)\n",
        )
        assert reals(backend) == {"127.0.0.2:8080": 5}

        # Drain the last real while it has a connection: weight 0, and the fallback comes in.
        backend.conns["127.0.0.2:8080"] = (1, 0)
        assert (await cli(run, "drain", VIP, "127.0.0.2:8080"))[0] == 0
        assert reals(backend) == {"127.0.0.2:8080": 0, "127.0.0.1:80": 1}
        await daemon.clock.advance(25)  # resyncs: still busy, still draining
        assert reals(backend) == {"127.0.0.2:8080": 0, "127.0.0.1:80": 1}
        code, out, _ = await cli(run, "status", "--json")
        doc = json.loads(out)
        r2, r3 = doc["virtuals"][0]["reals"]
        assert (r2["manual"], r2["health"], r2["kernel_weight"], r2["active"]) == (
            "draining",
            "up",
            0,
            1,
        )
        assert r2["drain_deadline"] == 1300.0
        assert (r3["manual"], r3["kernel_weight"], r3["desired_weight"]) == ("disabled", None, None)
        assert doc["virtuals"][0]["fallback"] == "127.0.0.1:80"

        backend.conns["127.0.0.2:8080"] = (0, 0)  # the last client left
        await daemon.clock.advance(10)
        assert reals(backend) == {"127.0.0.1:80": 1}
        holds = daemon.engine.holds.view()
        assert sorted((str(k.dest), h.value) for k, h in holds.items()) == [
            ("127.0.0.2:8080", "disabled"),
            ("127.0.0.3:8080", "disabled"),
        ]

        assert (await cli(run, "enable", VIP, "127.0.0.2:8080"))[0] == 0
        assert reals(backend) == {"127.0.0.2:8080": 5}

        # A drain that never sees its connections end is cut at its bound.
        backend.conns["127.0.0.2:8080"] = (3, 7)
        assert (await cli(run, "drain", VIP, "127.0.0.2:8080", "--timeout", "30"))[0] == 0
        await daemon.clock.advance(10)
        assert reals(backend)["127.0.0.2:8080"] == 0
        now[0] += 31
        await daemon.clock.advance(10)
        assert "127.0.0.2:8080" not in reals(backend)

        code, _, err = await cli(run, "enable", VIP, "127.0.0.9:80")
        assert code == 1 and "has no real server 127.0.0.9:80" in err
    await daemon.engine.shutdown()

    # A restart keeps what the operator held out: .2 and .3 never come back on their own.
    again = Daemon(backend, tmp_path / "state", now)
    await again.engine.start()
    await again.clock.advance(30)
    assert reals(backend) == {"127.0.0.1:80": 1}
    await again.engine.shutdown()


async def test_status_counts_checks_and_reconciles(tmp_path: Path) -> None:
    backend = CountingBackend()
    daemon = Daemon(backend, tmp_path, [0.0])
    await daemon.engine.start()
    await daemon.clock.advance(12)
    snap = await daemon.engine.snapshot("t.cf")
    assert snap.matches and snap.config == "t.cf"
    r2 = snap.virtuals[0].reals[0]
    assert r2.checks is not None and r2.checks.count >= 2 and r2.checks.failures == 0
    assert snap.counters.ops >= 3 and snap.counters.op_errors == 0
    # Someone edits an owned service by hand: the next resync repairs it and counts it.
    assert backend.apply_one(DelDest(SVC, DestKey(ip_address("127.0.0.2"), 8080))) == 0
    await daemon.clock.advance(10)
    assert (await daemon.engine.snapshot()).counters.drift_repairs == 1
    assert reals(backend)["127.0.0.2:8080"] == 5
    await daemon.engine.shutdown()


async def test_a_check_that_blocks_the_loop_is_noticed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def blocking(target: Target, spec: CheckSpec) -> Result:
        time.sleep(0.5)  # noqa: ASYNC251 -- the bug the detector exists to catch
        return Result(True, "HTTP 200 OK", 0.5)

    daemon = Daemon(CountingBackend(), tmp_path, [0.0], run=blocking)
    async with observing(daemon.engine, cfgname="t.cf", directory=tmp_path) as ctl:
        await daemon.engine.start()
        await daemon.clock.advance(0.1)
        await asyncio.sleep(0.05)  # the watch's timer runs (late)
        snap = await ctl.snapshot()
    await daemon.engine.shutdown()
    # The check finished before the loop got back to the timer: it is caught all the same.
    assert snap.counters.stalls >= 1 and snap.counters.stall_max >= 0.4
    assert "event loop stalled for" in caplog.text
