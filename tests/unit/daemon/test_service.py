"""EngineService: the engine as the daemon body daemon.serve runs (run, reload, stop)."""

from __future__ import annotations

import asyncio
import gc
import resource
from collections.abc import Callable, Collection
from pathlib import Path

from ldirector.config import MailAddress
from ldirector.core.events import EventKind
from ldirector.daemon import alerts, tuning
from ldirector.daemon.alerts import Alerter
from ldirector.daemon.process import DaemonContext, Settings
from ldirector.daemon.sdnotify import Notifier
from ldirector.daemon.service import EngineService, raise_file_limit
from ldirector.ipvs.backend import IpvsError
from ldirector.ipvs.types import IpvsTable, ServiceKey
from ldirector.testing import FakeBackend
from tests.support.engine_world import World, config


class Recording(Alerter):
    """An alerter that keeps what it is told instead of mailing it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[alerts.Event] = []

    def notify(self, event: alerts.Event) -> None:
        self.sent.append(event)


ON = """\
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 3
	checktype=on
"""


def _context(
    tmp_path: Path,
    text: str,
    *,
    alerter: Alerter,
    ready: Callable[[], None] = lambda: None,
    name: str = "x.cf",
) -> DaemonContext:
    """The daemon context EngineService runs in, for the config ``text``."""
    return DaemonContext(
        config_path=tmp_path / name,
        cfgname=name,
        settings=Settings(config=config(text)),
        notifier=Notifier({}),
        ready=ready,
        alerter=alerter,
    )


async def test_run_reload_stop(tmp_path: Path) -> None:
    backend = FakeBackend()
    ready = asyncio.Event()
    alerter = Recording()
    sent = alerter.sent
    ctx = _context(tmp_path, ON, alerter=alerter, ready=ready.set, name="ldirectord.cf")
    service = EngineService(ctx, backend=lambda: backend, state_dir=tmp_path)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(ready.wait(), 5)
    assert [str(vs.key) for vs in backend.table] == ["tcp:127.0.0.100:80"]
    assert (tmp_path / "ldirectord.cf.owned").read_text().splitlines()[1:] == ["tcp:127.0.0.100:80"]
    await service.reload(Settings(config=config(ON.replace("masq 3", "masq 4"))))
    (vs,) = backend.table
    (dest,) = vs.dests.values()
    assert dest.weight == 4
    assert service._engine is not None
    counters = service._engine.counters
    seen = [counters.last_reload_ok]
    service.reload_rejected()  # the daemon could not load the next file
    seen.append(counters.last_reload_ok)
    assert seen == [True, False]
    assert counters.last_reload is not None
    service.stop()
    await asyncio.wait_for(task, 5)
    assert len(backend.table) == 0  # cleanstop defaults to yes
    # checktype=on: the kernel took the real at start and dropped it at the cleanstop; the
    # weight edit of the reload is no change of state (the alerter mails these only where
    # emailalert= is set, and here it is not)
    assert [(e.kind, e.message) for e in sent] == [
        (EventKind.ADDED, "Added real server: 127.0.0.2:8080 (127.0.0.100:80) (Weight set to 3)"),
        (EventKind.PURGED, "Purged real server (stop): 127.0.0.2:8080 (127.0.0.100:80)"),
    ]


async def test_transitions_reach_the_alerter(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.2", 0)
    port = server.sockets[0].getsockname()[1]
    text = (
        'emailalert="ops@example.org"\nfallback=127.0.0.1:80 gate\n\n'
        f"virtual=127.0.0.100:80\n\treal=127.0.0.2:{port} masq\n\tchecktype=connect\n"
    )
    alerter = Recording()
    sent = alerter.sent
    ctx = _context(tmp_path, text, alerter=alerter)
    service = EngineService(ctx, backend=FakeBackend, state_dir=tmp_path)
    task = asyncio.create_task(service.run())
    for _ in range(100):
        if sent:
            break
        await asyncio.sleep(0.05)
    service.stop()
    await asyncio.wait_for(task, 5)
    server.close()
    await server.wait_closed()
    # The fallback added at start and removed by the first good check settles to nothing.
    assert [(e.kind, e.server) for e in sent] == [
        (EventKind.ADDED, f"127.0.0.2:{port}"),
        (EventKind.PURGED, f"127.0.0.2:{port}"),  # cleanstop
    ]
    assert sent[0].message == (
        f"Added real server: 127.0.0.2:{port} (127.0.0.100:80) (Weight set to 1)"
    )
    assert sent[0].virtual == "127.0.0.100:80"
    assert sent[0].settings.recipients == (MailAddress("ops", "example.org"),)


async def test_stop_before_run_returns_at_once(tmp_path: Path) -> None:
    ctx = _context(tmp_path, ON, alerter=Alerter())
    service = EngineService(ctx, backend=FakeBackend, state_dir=tmp_path)
    service.stop()
    await asyncio.wait_for(service.run(), 5)
    assert (
        not (tmp_path / "x.cf.owned").exists()
        or "tcp:" not in (tmp_path / "x.cf.owned").read_text()
    )


def test_raise_file_limit_stays_within_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        assert raise_file_limit(1) == soft  # never lowers it
        got = raise_file_limit(soft + 10)
        assert got == (soft + 10 if hard == resource.RLIM_INFINITY else min(soft + 10, hard))
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == got
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_reload_alerts_are_settled_and_say_reloading(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.2", 0)
    port = server.sockets[0].getsockname()[1]
    base = 'emailalert="ops@example.org"\nfallback=127.0.0.1:80 gate\n\n' + ON
    added = f"{base}\nvirtual=127.0.0.101:80\n\treal=127.0.0.2:{port} masq\n\tchecktype=connect\n"
    seen: list[tuple[str, EventKind, str]] = []

    class Statuses(Alerter):
        def notify(self, event: alerts.Event) -> None:
            seen.append((self.status, event.kind, event.server))

    alerter = Statuses()
    alerter.status = "running"
    ready = asyncio.Event()
    ctx = _context(tmp_path, base, alerter=alerter, ready=ready.set)
    service = EngineService(ctx, backend=FakeBackend, state_dir=tmp_path)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(ready.wait(), 5)
    seen.clear()
    await service.reload(Settings(config=config(added)))
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.05)
    service.stop()
    await asyncio.wait_for(task, 5)
    server.close()
    await server.wait_closed()
    # The new virtual's fallback came and went within the reload's first round: not mailed.
    assert seen[0] == ("reloading", EventKind.ADDED, f"127.0.0.2:{port}")
    assert all(kind is EventKind.PURGED for _, kind, _ in seen[1:])  # cleanstop


class _Flaky(FakeBackend):
    """A fake kernel whose table cannot be read while ``broken`` is set."""

    broken = False

    async def dump(self, only: Collection[ServiceKey] | None = None) -> IpvsTable:
        if self.broken:
            raise IpvsError("cannot read the IPVS table: netlink socket closed")
        return await super().dump(only)


async def test_a_reload_that_did_not_switch_holds_no_alerts(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.2", 0)
    port = server.sockets[0].getsockname()[1]
    text = (
        "checkinterval=1\nchecktimeout=1\nquiescent=no\n\n"
        f"virtual=127.0.0.100:80\n\treal=127.0.0.2:{port} masq\n\tchecktype=connect\n"
    )
    alerter = Recording()
    sent = alerter.sent
    ctx = _context(tmp_path, text, alerter=alerter)
    backend = _Flaky()
    service = EngineService(ctx, backend=lambda: backend, state_dir=tmp_path)
    task = asyncio.create_task(service.run())
    try:
        for _ in range(100):
            if sent:
                break
            await asyncio.sleep(0.05)
        assert [e.kind for e in sent] == [EventKind.ADDED]
        backend.broken = True
        await service.reload(Settings(config=config(text.replace("masq", "masq 2"))))
        backend.broken = False
        server.close()  # the real goes down: its alert must not wait for a settle
        await server.wait_closed()
        for _ in range(100):
            if len(sent) > 1:
                break
            await asyncio.sleep(0.05)
        assert [e.kind for e in sent] == [EventKind.ADDED, EventKind.DELETED]
    finally:
        service.stop()
        await asyncio.wait_for(task, 5)


async def test_the_daemon_not_the_engine_tunes_the_collector(tmp_path: Path) -> None:
    before = gc.get_threshold()
    # The engine alone leaves the process as it found it (a library user, a test, a bench).
    w = World(ON, tmp_path / "engine")
    await w.engine.start()
    assert gc.get_threshold() == before
    await w.engine.shutdown()
    # The daemon body tunes it for the engine's life, and gives it back after.
    ready = asyncio.Event()
    ctx = _context(tmp_path, ON, alerter=Recording(), ready=ready.set)
    service = EngineService(ctx, backend=FakeBackend, state_dir=tmp_path)
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(ready.wait(), 5)
        assert gc.get_threshold() == (tuning.YOUNG, tuning.MIDDLE, tuning.OLD)
        frozen = gc.get_freeze_count()
        assert frozen > 0
        await service.reload(Settings(config=config(ON.replace("masq 3", "masq 4"))))
        assert gc.get_freeze_count() > 0  # a reload freezes what its config brought
    finally:
        service.stop()
        await asyncio.wait_for(task, 5)
    assert gc.get_threshold() == before
