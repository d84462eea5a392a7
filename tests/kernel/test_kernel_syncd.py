"""The sync daemons from the config on a real kernel: start, reload, drift, stop, foreign ones.

The director is a network namespace this module creates, holding a veth pair (``synca`` and
``syncb``, both ends inside it) for the daemons' multicast; the test's thread enters it, so the
engine's netlink socket and ipvsadm act there. An operator's ``ipvsadm --stop-daemon`` is the
drift; a daemon started with ``ipvsadm --start-daemon`` is one ldirector did not start.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldirector.config import ConfigError, loads
from ldirector.engine import Engine
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.state.syncd import SyncOwnedStore

from .vmtools import inside_netns, ipvsadm, sh

pytestmark = pytest.mark.kernel

NS = "lds-director"
RESYNC = 1.0
#: Generous under TCG emulation.
WAIT = 20.0
DAEMON = re.compile(r"(master|backup) sync daemon \(mcast=([^,)]+), syncid=(\d+)")


@pytest.fixture
def director(vm: None) -> Iterator[None]:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    sh("ip", "netns", "add", NS)
    try:
        with inside_netns(NS):
            sh("ip", "link", "set", "lo", "up")
            sh("ip", "link", "add", "synca", "type", "veth", "peer", "name", "syncb")
            for number, name in enumerate(("synca", "syncb"), 1):
                sh("ip", "addr", "add", f"10.79.0.{number}/24", "dev", name)
                sh("ip", "link", "set", name, "up")
            yield
            for role in ("master", "backup"):  # a failed test's leftovers, stopped before the
                subprocess.run(  # netns goes; none running is what a passing test leaves
                    ["ipvsadm", "--stop-daemon", role], capture_output=True, check=False
                )
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)


def daemons_text() -> list[str]:
    """ipvsadm's view, one ``ROLE IF SYNCID`` a daemon, from its lines such as ``master sync
    daemon (mcast=IF, syncid=N, maxlen=...)``."""
    found = (DAEMON.match(text.strip()) for text in ipvsadm("-L", "--daemon").splitlines())
    return sorted(" ".join(m.groups()) for m in found if m)


async def wait_for(want: list[str]) -> float:
    start = time.monotonic()
    while (got := daemons_text()) != want:
        assert time.monotonic() - start < WAIT, f"ipvsadm shows {got}, want {want}"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def line(role: str, interface: str, syncid: int) -> str:
    return f"{role} {interface} {syncid}"


async def test_sync_daemons_follow_the_config_and_come_back(director: None, tmp_path: Path) -> None:
    store = SyncOwnedStore(tmp_path / "pair.cf.syncd")
    text = f"resyncinterval = {RESYNC}\nsyncdaemon = both synca\nsyncid = 5\n"
    backend = NetlinkBackend()
    engine = Engine(loads(text, "pair.cf"), backend, sync=store)
    await engine.start()
    try:
        await wait_for([line("backup", "synca", 5), line("master", "synca", 5)])
        # A reload moves the master and drops the backup.
        moved = f"resyncinterval = {RESYNC}\nsyncdaemon = master syncb\nsyncid = 6\n"
        await engine.reload(loads(moved, "pair.cf"))
        await wait_for([line("master", "syncb", 6)])
        # Stopped by hand: back within one resync.
        ipvsadm("--stop-daemon", "master")
        assert daemons_text() == []
        took = await wait_for([line("master", "syncb", 6)])
        print(f"\nsync daemon stopped by hand was back after {took:.2f} s (resync {RESYNC} s)")
        # One resync, plus the kernel starting its sync thread: seconds under TCG (3.6 s seen).
        assert took <= RESYNC + 5.0
        snap = await engine.snapshot()
        assert snap.sync is not None and snap.sync.repairs >= 1
    finally:
        await engine.shutdown()
        await backend.close()
    assert daemons_text() == []
    assert store.load() == frozenset()


async def test_a_daemon_ldirector_did_not_start_outlives_it(director: None, tmp_path: Path) -> None:
    ipvsadm("--start-daemon", "backup", "--mcast-interface", "syncb", "--syncid", "9")
    text = f"resyncinterval = {RESYNC}\nsyncdaemon = both synca\nsyncid = 5\n"
    backend = NetlinkBackend()
    engine = Engine(loads(text, "pair.cf"), backend, sync=SyncOwnedStore(None))
    await engine.start()
    try:
        await wait_for([line("backup", "syncb", 9), line("master", "synca", 5)])
        await asyncio.sleep(RESYNC * 2)  # resyncs leave it alone
        assert daemons_text() == [line("backup", "syncb", 9), line("master", "synca", 5)]
        snap = await engine.snapshot()
        assert snap.sync is not None
        backup = [d for d in snap.sync.daemons if d.state == "backup"]
        assert [(d.running, d.ours, d.interface) for d in backup] == [(True, False, "syncb")]
    finally:
        await engine.shutdown()
        await backend.close()
    assert daemons_text() == [line("backup", "syncb", 9)]


def test_check_refuses_an_interface_this_host_lacks(director: None) -> None:
    with pytest.raises(ConfigError) as caught:
        loads("syncdaemon = both eth7\n", "pair.cf")
    assert [str(d) for d in caught.value.errors] == [
        "pair.cf:1: error: syncdaemon: no network interface 'eth7' on this host"
    ]
    assert loads("syncdaemon = both synca\n", "pair.cf").syncdaemons
