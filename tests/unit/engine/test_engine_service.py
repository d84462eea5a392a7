"""EngineService: the engine as the daemon body process.serve runs (run, reload, stop)."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path

from engine_world import config

from ldirector.engine.service import EngineService, raise_file_limit
from ldirector.ipvs.fake import FakeBackend
from ldirector.process import DaemonContext, Settings
from ldirector.sdnotify import Notifier

ON = """\
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 3
	checktype=on
"""


async def test_run_reload_stop(tmp_path: Path) -> None:
    backend = FakeBackend()
    ready = asyncio.Event()
    ctx = DaemonContext(
        config_path=tmp_path / "ldirectord.cf",
        cfgname="ldirectord.cf",
        settings=Settings(config=config(ON)),
        notifier=Notifier({}),
        ready=ready.set,
    )
    service = EngineService(ctx, backend=lambda: backend, state_dir=tmp_path)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(ready.wait(), 5)
    assert [str(vs.key) for vs in backend.table] == ["tcp:127.0.0.100:80"]
    assert (tmp_path / "ldirectord.cf.owned").read_text().splitlines()[1:] == ["tcp:127.0.0.100:80"]
    await service.reload(Settings(config=config(ON.replace("masq 3", "masq 4"))))
    (vs,) = backend.table
    (dest,) = vs.dests.values()
    assert dest.weight == 4
    service.stop()
    await asyncio.wait_for(task, 5)
    assert len(backend.table) == 0  # cleanstop defaults to yes


async def test_stop_before_run_returns_at_once(tmp_path: Path) -> None:
    ctx = DaemonContext(
        config_path=tmp_path / "x.cf",
        cfgname="x.cf",
        settings=Settings(config=config(ON)),
        notifier=Notifier({}),
        ready=lambda: None,
    )
    service = EngineService(ctx, backend=FakeBackend, state_dir=tmp_path)
    service.stop()
    await asyncio.wait_for(service.run(), 5)


def test_raise_file_limit_stays_within_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        assert raise_file_limit(1) == soft  # never lowers it
        got = raise_file_limit(soft + 10)
        assert got == (soft + 10 if hard == resource.RLIM_INFINITY else min(soft + 10, hard))
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == got
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
