"""systemd notify datagrams, received on a unix socket the test binds."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

from ldirector.daemon.sdnotify import Notifier


def bound(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    return sock


def test_states_reach_the_socket(tmp_path: Path) -> None:
    address = str(tmp_path / "notify")
    with bound(address) as server:
        notifier = Notifier({"NOTIFY_SOCKET": address})
        assert notifier.enabled
        assert notifier.ready()
        assert notifier.reloading()
        assert notifier.ready("reloaded")
        assert notifier.stopping()
        assert notifier.watchdog()
        received = [server.recv(512).decode() for _ in range(5)]
    assert received[0] == "READY=1"
    assert received[1].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert received[2] == "READY=1\nSTATUS=reloaded"
    assert received[3:] == ["STOPPING=1", "WATCHDOG=1"]


def test_abstract_namespace_socket() -> None:
    name = f"ldirector-test-{uuid.uuid4().hex}"
    with bound("\0" + name) as server:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert server.recv(512) == b"READY=1"


def test_outside_systemd_everything_is_a_no_op(tmp_path: Path) -> None:
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.ready() and notifier.watchdog_seconds is None
    # A socket that vanished must not raise either.
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone")}).ready()


def test_watchdog_interval_honours_watchdog_pid() -> None:
    mine = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_seconds == 30.0
    assert Notifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_seconds is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_seconds is None
    assert Notifier({"WATCHDOG_USEC": "junk"}).watchdog_seconds is None


async def test_watchdog_loop_pings_at_half_the_interval(tmp_path: Path) -> None:
    address = str(tmp_path / "notify")
    with bound(address) as server:
        server.setblocking(False)
        notifier = Notifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "100000"})
        task = asyncio.create_task(notifier.watchdog_loop())
        await asyncio.sleep(0.22)
        task.cancel()
        pings = []
        while True:
            try:
                pings.append(server.recv(64))
            except BlockingIOError:
                break
    assert pings and set(pings) == {b"WATCHDOG=1"}
    assert 2 <= len(pings) <= 6  # every 50 ms for 220 ms, with slack for a loaded machine


async def test_no_watchdog_loop_without_watchdog_usec() -> None:
    await asyncio.wait_for(Notifier({}).watchdog_loop(), 1)
