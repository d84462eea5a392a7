"""The status endpoint's sockets: how many connections it keeps and for how long, whoever
opens them, and following ``httpstatus`` across reloads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import sys
import time
from collections.abc import Iterator

import aiohttp
import pytest

from ldirector.observe import endpoint
from ldirector.observe.endpoint import MAX_CONNECTIONS, StatusEndpoint
from ldirector.observe.shared import SharedSnapshots
from tests.support.fake_daemon import FakeDaemon
from tests.support.observe_world import BigWorld


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


async def get(port: int, path: str = "/status") -> int:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as resp,
    ):
        await resp.read()
        return resp.status


#: Opens ``count`` connections that never send a byte (another process: its descriptors are
#: its own), says how many it got, and holds them until its stdin closes.
IDLE = r"""
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(count):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        continue
    held.append(s)
print(len(held), flush=True)
sys.stdin.read()
"""


async def test_idle_connections_cannot_use_up_the_daemons_files() -> None:
    before = open_files()
    listener = await endpoint.start(FakeDaemon(), "127.0.0.1", 0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", IDLE, str(listener.address[1]), "500",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        opened = int(await asyncio.wait_for(proc.stdout.readline(), 60))
        assert opened == 500  # the kernel took them all; the endpoint kept few
        await asyncio.sleep(0.2)  # let the accept loop catch up with the last ones
        assert len(listener.limits.live) <= MAX_CONNECTIONS
        assert open_files() - before <= MAX_CONNECTIONS + 8
        # A reader who sends a request is served at once: an idle connection gives way.
        assert await asyncio.wait_for(get(listener.address[1]), 10) == 200
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        await listener.close()


async def test_a_request_head_sent_a_byte_a_second_is_cut() -> None:
    listener = await endpoint.start(FakeDaemon(), "127.0.0.1", 0, header_timeout=2.0)
    try:
        reader, writer = await asyncio.open_connection(*listener.address)
        head = b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 20
        start = time.monotonic()
        closed_after = None
        for byte in head[:12]:  # bounded: twelve seconds at most
            writer.write(bytes([byte]))
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                    closed_after = time.monotonic() - start
                    break
        writer.close()
        assert closed_after is not None, "a slow head kept its connection"
        assert closed_after < 2.0 + 1.5
        assert not listener.limits.live
    finally:
        await listener.close()


async def test_an_idle_connection_is_cut_too() -> None:
    listener = await endpoint.start(FakeDaemon(), "127.0.0.1", 0, header_timeout=0.5)
    try:
        reader, writer = await asyncio.open_connection(*listener.address)
        assert await asyncio.wait_for(reader.read(1), 5) == b""
        writer.close()
    finally:
        await listener.close()


async def test_a_reader_that_reads_nothing_is_dropped(caplog: pytest.LogCaptureFixture) -> None:
    world = BigWorld(2000)  # a /metrics of megabytes
    listener = await endpoint.start(
        SharedSnapshots(world.snapshot), "127.0.0.1", 0, write_timeout=0.5
    )
    try:
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(listener.address)
            request = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            client.sendall(request * 3)
            deadline = time.monotonic() + 15
            while listener.limits.live and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            assert not listener.limits.live, "a client that reads nothing is still held"
        assert await get(listener.address[1]) == 200
    finally:
        await listener.close()
    # Dropping a reader is the endpoint's policy, not a bug: no error, no traceback.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_a_low_open_file_limit_lowers_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda which: (320, 4096))
    listener = await endpoint.start(FakeDaemon(), "127.0.0.1", 0)
    try:
        assert listener.limits.cap == 20  # the rest is the checks' and the logs'
    finally:
        await listener.close()


async def test_busy_port_is_an_oserror() -> None:
    listener = await endpoint.start(FakeDaemon(), "127.0.0.1", 0)
    try:
        with pytest.raises(OSError):
            await endpoint.start(FakeDaemon(), "127.0.0.1", listener.address[1])
    finally:
        await listener.close()


# --- following the config ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _answers(port: int) -> bool:
    try:
        return await get(port) == 200
    except aiohttp.ClientConnectionError:
        return False


@contextlib.contextmanager
def socket_on(port: int) -> Iterator[None]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        yield


async def test_the_endpoint_follows_httpstatus_across_reloads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = _free_port(), _free_port()
    status = StatusEndpoint(FakeDaemon())
    try:
        await status.follow(None)  # off: nothing listens
        await status.follow(("127.0.0.1", first))
        assert await _answers(first)
        await status.follow(("127.0.0.1", first))  # unchanged: the same listener serves on
        assert await _answers(first)
        await status.follow(("127.0.0.1", second))  # moved by a reload
        assert await _answers(second) and not await _answers(first)
        await status.follow(None)  # removed by a reload
        assert not await _answers(second)
        with socket_on(first):  # busy: logged, and tried again at the next reload
            await status.follow(("127.0.0.1", first))
        assert f"httpstatus 127.0.0.1:{first}:" in caplog.text
        await status.follow(("127.0.0.1", first))
        assert await _answers(first)
    finally:
        await status.close()
    assert "loopback" not in caplog.text


async def test_a_status_page_open_to_the_network_is_warned_about_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound: list[tuple[str, int]] = []

    async def start(source: object, host: str, port: int) -> endpoint.Listener:
        bound.append((host, port))
        raise OSError("not bound in this test")  # no socket on a public address here

    monkeypatch.setattr(endpoint, "start", start)
    status = StatusEndpoint(FakeDaemon())
    await status.follow(("192.0.2.10", 9555))
    await status.follow(("192.0.2.10", 9555))  # a reload that keeps it: retried, not re-warned
    await status.follow(("::", 9555))
    warnings = [r.getMessage() for r in caplog.records if "not a loopback address" in r.message]
    assert warnings == [
        "httpstatus 192.0.2.10:9555 is not a loopback address: anyone who can reach it can"
        " read the status of every real server",
        "httpstatus :::9555 is not a loopback address: anyone who can reach it can"
        " read the status of every real server",
    ]
    assert bound == [("192.0.2.10", 9555), ("192.0.2.10", 9555), ("::", 9555)]
