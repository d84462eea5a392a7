"""The daemon body starts the control socket and the HTTP endpoint with the engine, and stops
them with it; a reload shows in the metrics."""

from __future__ import annotations

import asyncio
import socket
import stat
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ldirector.config import loads
from ldirector.control.protocol import request
from ldirector.daemon.alerts import Alerter
from ldirector.daemon.process import DaemonContext, Settings
from ldirector.daemon.sdnotify import Notifier
from ldirector.daemon.service import EngineService
from ldirector.testing import FakeBackend

TEXT = """\
httpstatus = 127.0.0.1:{port}
virtual=127.0.0.100:80
	real=127.0.0.2:8080 masq 3
	real=127.0.0.3:8080 masq 1
	checktype=on
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(text: str, name: str) -> list[float]:
    return [
        s.value for f in text_string_to_metric_families(text) for s in f.samples if s.name == name
    ]


async def test_daemon_serves_socket_and_http(tmp_path: Path) -> None:
    port = free_port()
    text = TEXT.format(port=port)
    backend = FakeBackend()
    ready = asyncio.Event()
    ctx = DaemonContext(
        config_path=tmp_path / "web.cf",
        cfgname="web.cf",
        settings=Settings(config=loads(text, "web.cf")),
        notifier=Notifier({}),
        ready=ready.set,
        alerter=Alerter(),
    )
    service = EngineService(ctx, backend=lambda: backend, state_dir=tmp_path)
    task = asyncio.create_task(service.run())
    await asyncio.wait_for(ready.wait(), 5)
    sock = tmp_path / "web.cf.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600

    reply = await asyncio.to_thread(
        request, sock, {"cmd": "disable", "virtual": "127.0.0.100:80", "real": "127.0.0.3:8080"}
    )
    assert reply["message"] == "disabled 127.0.0.3:8080 (tcp:127.0.0.100:80)"
    (vs,) = backend.table
    assert [str(k) for k in vs.dests] == ["127.0.0.2:8080"]
    assert (tmp_path / "web.cf.manual.json").exists()

    await service.reload(Settings(config=loads(text.replace("masq 3", "masq 4"), "web.cf")))
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
            body = await resp.text()
        async with session.get(f"http://127.0.0.1:{port}/status") as resp:
            doc = await resp.json()
    assert metric(body, "ldirector_last_reload_success") == [1.0]
    assert metric(body, "ldirector_real_weight") == [4.0]
    assert [r["manual"] for r in doc["virtuals"][0]["reals"]] == [None, "disabled"]

    # A reload that moves httpstatus moves the status page, no restart needed.
    moved = free_port()
    await service.reload(Settings(config=loads(TEXT.format(port=moved), "web.cf")))
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{moved}/status") as resp,
    ):
        assert resp.status == 200
    with socket.socket() as s:  # the old port is free again
        s.bind(("127.0.0.1", port))

    service.stop()
    await asyncio.wait_for(task, 10)
    assert not sock.exists()
    with socket.socket() as s:  # the HTTP port is free again
        s.bind(("127.0.0.1", moved))
