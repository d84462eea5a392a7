"""The control socket: JSON lines, root only, and no request can hurt the daemon."""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ldirector.control import server as control_server
from ldirector.control.protocol import ControlError, request, socket_path
from ldirector.control.server import ControlServer
from tests.support.fake_daemon import BlindDaemon, FakeDaemon


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ControlServer]:
    srv = ControlServer(socket_path("ldirectord.cf", tmp_path / "run"), FakeDaemon())
    await srv.start()
    try:
        yield srv
    finally:
        await srv.close()


async def ask(path: Path, message: dict[str, object]) -> dict[str, object]:
    return await asyncio.to_thread(request, path, message, timeout=5)


async def raw(path: Path, data: bytes) -> list[dict[str, object]]:
    reader, writer = await asyncio.open_unix_connection(str(path), limit=1 << 20)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    replies = [json.loads(line) for line in (await reader.read()).splitlines()]
    writer.close()
    await writer.wait_closed()
    return replies


async def test_socket_is_private(server: ControlServer) -> None:
    mode = server.path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert server.path.name == "ldirectord.cf.sock"


async def test_status_and_overrides(server: ControlServer) -> None:
    reply = await ask(server.path, {"cmd": "status"})
    status = reply["status"]
    assert isinstance(status, dict)
    assert status["virtuals"][0]["reals"][0]["real"] == "127.0.0.2:8080"
    reply = await ask(
        server.path,
        {"cmd": "drain", "virtual": "127.0.0.100:80", "real": "127.0.0.2:8080", "timeout": 5},
    )
    assert reply["message"] == "drain 127.0.0.2:8080 (tcp:127.0.0.100:80)"
    assert isinstance(server.daemon, FakeDaemon)
    assert server.daemon.calls == [("drain", "127.0.0.100:80", "127.0.0.2:8080", 5)]
    assert (await ask(server.path, {"cmd": "ping"}))["pid"] == os.getpid()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"garbage\n", "not a JSON object"),
        (b"[1, 2]\n", "not a JSON object"),
        (b"\xff\xfe\n", "not a JSON object"),
        (b'{"cmd": "reboot"}\n', "unknown command: 'reboot'"),
        (b"{}\n", "unknown command: 'None'"),
        (b'{"cmd": "disable"}\n', "disable needs 'virtual' and 'real' strings"),
        (b'{"cmd": "enable", "virtual": 1, "real": "x"}\n', "enable needs"),
        (
            b'{"cmd": "drain", "virtual": "127.0.0.100:80", "real": "127.0.0.2", "timeout": -1}\n',
            "timeout must be 0..604800 seconds",
        ),
        (
            b'{"cmd": "drain", "virtual": "127.0.0.100:80", "real": "127.0.0.2", "timeout": true}'
            b"\n",
            "timeout must be",
        ),
        (b'{"cmd": "disable", "virtual": "web", "real": "127.0.0.2"}\n', "not a virtual service"),
        (
            b'{"cmd": "disable", "virtual": "127.0.0.100:80", "real": "127.0.0.9:1"}\n',
            "has no real server 127.0.0.9:1",
        ),
    ],
)
async def test_malformed_requests_get_one_line_errors(
    server: ControlServer, line: bytes, error: str
) -> None:
    (reply,) = await raw(server.path, line)
    assert reply["ok"] is False
    message = str(reply["error"])
    assert error in message
    assert "\n" not in message
    # ... and the daemon carries on serving.
    assert (await ask(server.path, {"cmd": "ping"}))["ok"] is True


async def test_several_requests_on_one_connection(server: ControlServer) -> None:
    replies = await raw(server.path, b'{"cmd": "ping"}\nnope\n{"cmd": "ping"}\n')
    assert [r["ok"] for r in replies] == [True, False, True]


async def test_oversized_and_truncated_requests(server: ControlServer) -> None:
    (reply,) = await raw(server.path, b"x" * (200 * 1024))
    assert reply == {"ok": False, "error": "request too long"}
    assert await raw(server.path, b'{"cmd": "pi') == []  # closed mid-line: nothing to answer
    assert (await ask(server.path, {"cmd": "ping"}))["ok"] is True


async def test_client_errors_are_one_line(server: ControlServer, tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="unknown command"):
        await ask(server.path, {"cmd": "nope"})
    missing = tmp_path / "none.sock"
    with pytest.raises(ControlError, match=r"no control socket at .*: is the daemon running"):
        await ask(missing, {"cmd": "ping"})
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(dead))  # bound, never listening: a daemon that died
    with pytest.raises(ControlError, match="cannot talk to the daemon"):
        await ask(dead, {"cmd": "ping"})


async def test_stale_socket_is_replaced_live_one_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
    first = ControlServer(path, FakeDaemon())
    await first.start()  # the stale file of a dead daemon goes away
    try:
        second = ControlServer(path, FakeDaemon())
        with pytest.raises(OSError, match="another daemon is answering"):
            await second.start()
        assert (await ask(path, {"cmd": "ping"}))["ok"] is True
    finally:
        await first.close()
    assert not path.exists()


async def test_unreadable_kernel_is_an_error_reply(tmp_path: Path) -> None:
    srv = ControlServer(tmp_path / "b.sock", BlindDaemon())
    await srv.start()
    try:
        with pytest.raises(ControlError, match="cannot read the IPVS table: permission denied"):
            await ask(srv.path, {"cmd": "status"})
    finally:
        await srv.close()


async def test_a_deeply_nested_request_gets_a_one_line_error(
    server: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    # 40 kB, under the request limit: the JSON parser recurses once per bracket.
    (reply,) = await raw(server.path, b"[" * 20_000 + b"]" * 20_000 + b"\n")
    assert reply == {"ok": False, "error": "not a JSON object (nested too deeply)"}
    assert "Traceback" not in caplog.text and "internal error" not in caplog.text
    assert (await ask(server.path, {"cmd": "ping"}))["ok"] is True


async def test_a_client_that_never_reads_is_dropped(
    server: ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(control_server, "IDLE_TIMEOUT", 0.5)
    with socket.socket(socket.AF_UNIX) as client:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(str(server.path))
        # Thousands of status requests, and never a byte read of the replies (megabytes).
        client.sendall(b'{"cmd": "status"}\n' * 2000)
        poller = select.poll()
        poller.register(client, select.POLLRDHUP | select.POLLHUP)
        deadline = time.monotonic() + 5
        while not poller.poll(0) and time.monotonic() < deadline:  # noqa: ASYNC110 - a socket's state
            await asyncio.sleep(0.05)
        assert poller.poll(0), "the daemon still holds a client that reads nothing"
    assert (await ask(server.path, {"cmd": "ping"}))["ok"] is True


@pytest.mark.parametrize(
    "virtual", ["\u0667", "fwm:\u0667", "fwm:\u00b2", "fwm6:\u0667", "tcp:127.0.0.100:\u0668\u0660"]
)
async def test_marks_and_ports_are_ascii_digits(server: ControlServer, virtual: str) -> None:
    line = json.dumps({"cmd": "disable", "virtual": virtual, "real": "127.0.0.4"})
    (reply,) = await raw(server.path, line.encode() + b"\n")
    assert reply["ok"] is False and "not a virtual service" in str(reply["error"])
    assert isinstance(server.daemon, FakeDaemon) and server.daemon.calls == []
