"""The table writer: the owned set on disk before the ops, refused ops counted, toggles."""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping, Sequence
from ipaddress import ip_address
from pathlib import Path

import pytest

from ldirector.engine.writer import TableWriter
from ldirector.ipvs.ops import AddDest, AddService, Op
from ldirector.ipvs.toggles import ToggleError
from ldirector.ipvs.types import (
    Dest,
    Forward,
    InetServiceKey,
    IpvsTable,
    Protocol,
    Service,
    VirtualService,
)
from ldirector.observe.snapshot import Counters
from ldirector.state.owned import OwnedStore
from ldirector.testing import FakeBackend
from tests.support.engine_world import config

WEB = InetServiceKey(Protocol.TCP, ip_address("127.0.0.100"), 80)
GONE = InetServiceKey(Protocol.TCP, ip_address("127.0.0.101"), 80)
OLD = InetServiceKey(Protocol.TCP, ip_address("127.0.0.102"), 80)
VIRTUAL = "virtual=127.0.0.100:80\n\treal=127.0.0.2:80 masq\n"


def test_claim_keeps_what_the_kernel_still_holds_and_saves_before_any_op(tmp_path: Path) -> None:
    store = OwnedStore(tmp_path / "t.cf.owned")
    store.save(frozenset({GONE, OLD}))  # the last run's claim
    writer = TableWriter(FakeBackend(), store, Counters())
    writer.load_owned()
    kernel = IpvsTable.of(VirtualService.of(Service(key=GONE, scheduler="wrr"), []))
    writer.claim({WEB}, kernel)
    # GONE left the config but is still in the kernel: still ours, to be deleted; OLD is gone.
    assert writer.owned == {WEB, GONE} and store.load() == {WEB, GONE}
    writer.release({WEB, GONE}, left={GONE})  # a cleanstop that could not delete GONE
    assert writer.owned == {GONE} and store.load() == {GONE}


async def test_refused_ops_are_logged_and_counted_and_only_the_taken_ones_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = FakeBackend()
    counters = Counters()
    writer = TableWriter(backend, OwnedStore(None), counters)
    told: list[Sequence[Op]] = []
    dest = Dest(address=ip_address("127.0.0.2"), port=80, forward=Forward.MASQ, weight=1)
    ops: list[Op] = [AddService(Service(key=WEB, scheduler="wrr")), AddDest(WEB, dest)]
    backend.fail_next = {1: errno.ENOMEM}
    await writer.apply(ops, told.append)
    await writer.apply([], told.append)  # nothing to do: nothing told
    # Told after the kernel answered, and only what it took: the refused real is not "Added".
    assert told == [ops[:1]]
    assert (counters.ops, counters.op_errors) == (2, 1)
    assert "127.0.0.2:80" in caplog.text
    await writer.apply(ops[1:], told.append)  # taken this time
    assert told[-1] == ops[1:]


async def test_nothing_is_told_before_the_kernel_answered() -> None:
    seen: list[int] = []

    class Slow(FakeBackend):
        async def apply(self, ops: Sequence[Op]) -> None:
            seen.append(len(told))  # what had been told when the kernel was asked
            await super().apply(ops)

    told: list[Sequence[Op]] = []
    writer = TableWriter(Slow(), OwnedStore(None), Counters())
    ops: list[Op] = [AddService(Service(key=WEB, scheduler="wrr"))]
    await writer.apply(ops, told.append)
    assert seen == [0] and told == [ops]


async def test_toggles_are_written_only_when_asked_and_failures_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    written: list[dict[str, int]] = []

    def refuse(values: Mapping[str, int]) -> None:
        written.append(dict(values))
        raise ToggleError("/proc/sys/net/ipv4/vs is not there: the ip_vs module is not loaded")

    writer = TableWriter(FakeBackend(), OwnedStore(None), Counters(), refuse)
    await writer.write_sysctls(config(VIRTUAL))
    assert written == []  # no toggle in the config: the kernel's settings are left alone
    with caplog.at_level(logging.ERROR):
        await writer.write_sysctls(config("expire_nodest_conn=yes\n" + VIRTUAL))
    assert written == [{"expire_nodest_conn": 1}]
    assert "cannot set IPVS kernel settings: /proc/sys/net/ipv4/vs is not there" in caplog.text
