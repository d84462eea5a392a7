"""syncd: the engine keeps the sync daemons as the config asks, and stops only its own."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest

from ldirector.config import Config, loads
from ldirector.engine.engine import Engine
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.observe import render
from ldirector.observe.metrics import exposition
from ldirector.state.syncd import SyncOwnedStore
from ldirector.testing import FakeBackend, FakeClock

MASTER, BACKUP = DaemonState.MASTER, DaemonState.BACKUP
PAIR = "resyncinterval = 5\nsyncdaemon = both eth1\nsyncid = 7\n"


def cfg(text: str) -> Config:
    return loads(text, "pair.cf", has_interface={"eth1", "eth2"}.__contains__)


class Pair:
    """One director: an engine on a fake kernel, its started-daemons file in ``tmp``."""

    def __init__(self, text: str, tmp: Path, backend: FakeBackend | None = None) -> None:
        self.clock = FakeClock()
        self.backend = backend or FakeBackend(interfaces={"eth1", "eth2"})
        self.store = SyncOwnedStore(tmp / "pair.cf.syncd")
        self.engine = Engine(
            cfg(text), self.backend, clock=self.clock, sync=self.store, rng=random.Random(1)
        )

    async def daemons(self) -> list[tuple[str, str, int]]:
        return [(d.state.word, d.interface, d.syncid) for d in await self.backend.daemons()]


async def test_start_runs_both_daemons_and_records_them(tmp_path: Path) -> None:
    p = Pair(PAIR, tmp_path)
    await p.engine.start()
    assert await p.daemons() == [("master", "eth1", 7), ("backup", "eth1", 7)]
    assert p.store.load() == {MASTER, BACKUP}
    status = (await p.engine.snapshot()).sync
    assert status is not None
    assert [(d.state, d.running, d.ours, d.matches) for d in status.daemons] == [
        ("master", True, True, True),
        ("backup", True, True, True),
    ]
    await p.engine.shutdown()


async def test_reload_changes_a_daemon_and_drops_one_no_longer_configured(tmp_path: Path) -> None:
    p = Pair(PAIR, tmp_path)
    await p.engine.start()
    await p.engine.reload(cfg("resyncinterval = 5\nsyncdaemon = master eth2\nsyncid = 9\n"))
    assert await p.daemons() == [("master", "eth2", 9)]
    assert p.store.load() == {MASTER}
    await p.engine.shutdown()
    assert await p.daemons() == []


async def test_a_daemon_stopped_by_hand_is_back_within_one_resync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    p = Pair(PAIR, tmp_path)
    await p.engine.start()
    await p.backend.stop_daemon(BACKUP)  # an operator's ipvsadm --stop-daemon backup
    with caplog.at_level(logging.WARNING):
        await p.clock.advance(5.1)
    assert await p.daemons() == [("master", "eth1", 7), ("backup", "eth1", 7)]
    assert "sync daemon: backup on eth1 (syncid 7) was not running; started it again" in (
        caplog.messages
    )
    snap = await p.engine.snapshot()
    assert snap.sync is not None and snap.sync.repairs == 1
    assert "\nldirector_sync_daemon_repairs_total 1\n" in exposition(snap).decode()
    await p.engine.shutdown()


async def test_stop_stops_the_daemons_ldirector_started(tmp_path: Path) -> None:
    p = Pair(PAIR, tmp_path)
    await p.engine.start()
    await p.engine.shutdown()
    assert await p.daemons() == []
    assert p.store.load() == frozenset()


async def test_a_daemon_ldirector_did_not_start_is_left_alone_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend(interfaces={"eth1", "eth2"})
    await backend.start_daemon(SyncDaemon(state=BACKUP, interface="eth2", syncid=3))
    p = Pair(PAIR, tmp_path, backend)
    with caplog.at_level(logging.WARNING):
        await p.engine.start()
        await p.clock.advance(5.1)
    assert await p.daemons() == [("master", "eth1", 7), ("backup", "eth2", 3)]
    warned = [m for m in caplog.messages if "not started by ldirector" in m]
    assert warned == [
        "sync daemon: a backup on eth2 (syncid 3) not started by ldirector is running; leaving "
        "it alone (stop it to let ldirector start the configured one)"
    ]  # once, not at every resync
    snap = await p.engine.snapshot()
    assert "sync backup on eth2 syncid 3: running, NOT started by ldirector (left alone)" in (
        render.render_text(snap)
    )
    await p.engine.shutdown()
    assert await p.daemons() == [("backup", "eth2", 3)]


async def test_what_ldirector_started_survives_a_restart(tmp_path: Path) -> None:
    backend = FakeBackend(interfaces={"eth1", "eth2"})
    first = Pair(PAIR, tmp_path, backend)
    await first.engine.start()  # then killed: no shutdown
    second = Pair("resyncinterval = 5\n", tmp_path, backend)
    await second.engine.start()  # its config no longer names them: they were ours, so they go
    assert await second.daemons() == []
    await second.engine.shutdown()


async def test_without_the_started_record_a_restart_leaves_the_daemons_alone(
    tmp_path: Path,
) -> None:
    backend = FakeBackend(interfaces={"eth1", "eth2"})
    await Pair(PAIR, tmp_path, backend).engine.start()
    (tmp_path / "pair.cf.syncd").unlink()
    second = Pair("resyncinterval = 5\n", tmp_path, backend)
    await second.engine.start()
    await second.engine.shutdown()
    assert [d.state for d in await backend.daemons()] == [MASTER, BACKUP]


async def test_a_refused_start_is_logged_once_and_retried_at_each_resync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = FakeBackend(interfaces={"eth2"})  # eth1 vanished after the config was checked
    p = Pair("resyncinterval = 5\nsyncdaemon = master eth1\n", tmp_path, backend)
    with caplog.at_level(logging.ERROR):
        await p.engine.start()
        await p.clock.advance(10.1)
    errors = [m for m in caplog.messages if "sync daemon" in m]
    assert errors == ["cannot start the master sync daemon: no network interface named 'eth1'"]
    snap = await p.engine.snapshot()
    assert snap.sync is not None
    assert snap.sync.errors == 3 and snap.sync.starts == 0
    assert render.from_json(render.to_json(snap)).sync == snap.sync
    assert p.store.load() == frozenset()  # nothing running is claimed
    await p.engine.shutdown()


async def test_a_config_without_syncdaemon_never_asks_the_kernel(tmp_path: Path) -> None:
    class Untouchable(FakeBackend):
        async def daemons(self) -> tuple[SyncDaemon, ...]:
            raise AssertionError("the sync daemons were read")

    p = Pair("resyncinterval = 5\n", tmp_path, Untouchable())
    await p.engine.start()
    await p.clock.advance(5.1)
    assert (await p.engine.snapshot()).sync is None
    await p.engine.shutdown()
