"""The daemon's event loop: asyncio's by default, uvloop on request (auto: where installed), and
every check kind that uses the loop's socket methods working on both."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import socket
from ipaddress import ip_address

import pytest

import checks
from checks.types import ConnectSpec, HttpSpec, PingSpec, Result, Target
from ldirector.daemon import eventloop

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None
LOOPS = pytest.mark.parametrize(
    "wanted",
    [
        pytest.param("uvloop", marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="no uvloop")),
        "asyncio",
    ],
)


def test_uvloop_by_default_and_asyncio_on_request(caplog: pytest.LogCaptureFixture) -> None:
    assert HAVE_UVLOOP  # a dependency: the default loop of every install
    for environ in ({}, {eventloop.ENV: "auto"}, {eventloop.ENV: " UVloop "}):
        factory, name = eventloop.choose(environ)
        assert (factory is not None, name) == (True, "uvloop"), environ
    assert eventloop.choose({eventloop.ENV: " AsyncIO "}) == (None, "asyncio")
    with caplog.at_level(logging.WARNING, logger="ldirector.daemon.eventloop"):
        factory, name = eventloop.choose({eventloop.ENV: "libev\x1b[31m"})
    assert name == "uvloop"  # the default
    assert "is not one of auto, uvloop, asyncio" in caplog.text
    assert "\x1b" not in caplog.text


def test_a_missing_uvloop_falls_back_to_asyncio(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = importlib.import_module

    def without_uvloop(name: str, package: str | None = None) -> object:
        if name == "uvloop":
            raise ImportError(name)
        return real(name, package)

    monkeypatch.setattr(importlib, "import_module", without_uvloop)
    with caplog.at_level(logging.WARNING, logger="ldirector.daemon.eventloop"):
        assert eventloop.choose({}) == (None, "asyncio")
        assert not caplog.text  # auto: quietly
        assert eventloop.choose({eventloop.ENV: "uvloop"}) == (None, "asyncio")
    assert "uvloop is not installed" in caplog.text


@LOOPS
def test_run_uses_the_chosen_loop(wanted: str) -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    module = eventloop.run(loop_module(), {eventloop.ENV: wanted})
    assert module.startswith(wanted)


async def _every_socket_kind(port: int) -> list[Result]:
    local = Target(address=ip_address("127.0.0.1"), port=port)
    return [
        await checks.run(Target(address=ip_address("127.0.0.1"), port=0), PingSpec()),
        await checks.run(Target(address=ip_address("::1"), port=0), PingSpec()),
        await checks.run(local, ConnectSpec()),
        await checks.run(local, HttpSpec(request="/", receive=re.compile("hello"))),
    ]


@LOOPS
def test_checks_work_on_the_loop(wanted: str) -> None:
    """Ping (raw ICMP socket, add_reader), connect (sock_connect) and HTTP (a Protocol)."""
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"

    async def main() -> list[Result]:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(reply)
                await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass  # the connect check closes without a word
            finally:
                writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0, family=socket.AF_INET)
        async with server:
            port = server.sockets[0].getsockname()[1]
            async with asyncio.timeout(20):
                return await _every_socket_kind(port)

    fds = len(os.listdir("/proc/self/fd"))
    results = eventloop.run(main(), {eventloop.ENV: wanted})
    assert [r.ok for r in results] == [True] * 4, [r.reason for r in results]
    assert len(os.listdir("/proc/self/fd")) == fds  # the loop and every check closed theirs
