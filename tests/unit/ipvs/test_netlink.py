"""NetlinkBackend without an IPVS table: its failure paths on this host, and its dump and request
loops against a scripted kernel."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import platform
import socket
from collections.abc import AsyncIterator, Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from ldirector.ipvs import genl
from ldirector.ipvs.backend import IpvsError, IpvsUnavailable
from ldirector.ipvs.netlink import NetlinkBackend
from ldirector.ipvs.sync import DaemonState, SyncDaemon
from ldirector.ipvs.types import Dest, InetServiceKey, Protocol, Service

from .wire import (
    FAMILY,
    daemonmsg,
    dest_reply,
    done,
    error,
    pyroute2_reply,
    service_reply,
    u16,
    u32,
    with_seq,
)

HOST_HAS_IPVS = (
    Path("/proc/sys/net/ipv4/vs").exists()
    or Path(f"/lib/modules/{platform.release()}/kernel/net/netfilter/ipvs").exists()
)


@pytest.mark.skipif(HOST_HAS_IPVS, reason="this host kernel has IPVS; tests/kernel covers it")
async def test_kernel_without_ipvs_is_one_sentence() -> None:
    backend = NetlinkBackend()
    with pytest.raises(IpvsUnavailable) as caught:
        await backend.dump()
    assert str(caught.value) == (
        "this kernel has no IPVS support: load it with 'modprobe ip_vs' "
        "or use a kernel built with CONFIG_IP_VS"
    )
    await backend.close()


async def test_missing_network_namespace_is_one_sentence() -> None:
    backend = NetlinkBackend(netns=f"ldirector-absent-{os.getpid()}")
    with pytest.raises(
        IpvsError, match=r"^cannot open IPVS in network namespace ldirector-absent-"
    ):
        await backend.dump()
    await backend.apply([])  # nothing to do: no socket is needed, so no error either


# The dump and request loops against a scripted kernel: the far end of a socketpair answers each
# request with canned messages, so hostile replies reach the backend exactly as a kernel's would.

Reply = Callable[[int], bytes]


def dump_of(*messages: bytes) -> Reply:
    """A whole dump answering the request: every message, then NLMSG_DONE."""
    return lambda seq: b"".join(with_seq(m, seq) for m in messages) + done(seq)


def ack(code: int = 0) -> Reply:
    return lambda seq: error(seq, code)


@contextlib.asynccontextmanager
async def scripted(*replies: Reply) -> AsyncIterator[tuple[NetlinkBackend, list[bytes]]]:
    """A backend wired to a kernel that answers with ``replies`` in order; yields the backend
    and the list of requests the kernel received."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    theirs.setblocking(False)
    backend = NetlinkBackend()
    # Skips the family lookup: the socket is already "bound" to the IPVS family.
    backend._sock, backend._family = ours, FAMILY
    requests: list[bytes] = []

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        for reply in replies:
            request = await loop.sock_recv(theirs, 1 << 16)
            requests.append(request)
            ((_, _, seq, _),) = genl.messages(request)
            await loop.sock_sendall(theirs, reply(seq))

    kernel = asyncio.create_task(serve())
    try:
        yield backend, requests
        assert kernel.done(), "the backend sent fewer requests than the script answers"
        await kernel
    finally:
        kernel.cancel()
        await backend.close()
        theirs.close()


def hostile_dump() -> list[Reply]:
    """WEB listed twice (the second copy with a real using forwarding method 4 and a duplicated
    real), a service of an unknown family and one with an unreadable netmask."""
    return [
        dump_of(
            service_reply(),
            service_reply(AF=u16(99)),
            service_reply("127.0.10.2", NETMASK=b"\xff"),
            service_reply(SCHED_NAME=b"rr\0"),
        ),
        dump_of(dest_reply()),
        dump_of(dest_reply(), dest_reply("127.0.20.2", FWD=u32(4)), dest_reply(WEIGHT=u32(5))),
    ]


async def test_a_hostile_table_stays_readable_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with scripted(*hostile_dump(), *hostile_dump()) as (backend, requests):
        table = await backend.dump()
        assert await backend.dump() == table
    web = InetServiceKey(Protocol.TCP, IPv4Address("127.0.10.1"), 80)
    assert list(table.services) == [web]
    assert table[web].service == Service(key=web, scheduler="rr")
    real = Dest(address=IPv4Address("127.0.20.1"), port=80, weight=5)
    assert dict(table[web].dests) == {real.key: real}
    assert [f.reason for f in table[web].foreign] == ["unknown forwarding method 4"]
    assert sorted(f.reason for f in table.foreign) == [
        "netmask attribute is 1 bytes, not 4",
        "unknown address family 99",
    ]
    # Destinations are asked for by the readable service's key only, never a foreign one's.
    asked = [genl.genl_attrs(body) for _, _, _, body in genl.messages(b"".join(requests))]
    assert [a[genl.CMD_ATTR_SERVICE].tobytes() for a in asked if a] == [
        genl.encode_service_key(web)
    ] * 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5 == len(set(warnings))


async def test_a_truncated_reply_is_an_ipvs_error_and_the_socket_is_replaced() -> None:
    cut = lambda seq: with_seq(service_reply(), seq)[:30]  # noqa: E731
    async with scripted(cut) as (backend, _):
        with pytest.raises(IpvsError, match=r"^malformed reply from the kernel: truncated"):
            await backend.dump()
        assert backend._sock is None


def daemon_message(state: int, interface: str) -> bytes:
    attrs = [
        ("IPVS_DAEMON_ATTR_STATE", state),
        ("IPVS_DAEMON_ATTR_MCAST_IFN", interface),
        ("IPVS_DAEMON_ATTR_SYNC_ID", 9),
        ("IPVS_DAEMON_ATTR_SYNC_MAXLEN", 1472),
        ("IPVS_DAEMON_ATTR_MCAST_PORT", 8848),
        ("IPVS_DAEMON_ATTR_MCAST_TTL", 1),
        ("IPVS_DAEMON_ATTR_MCAST_GROUP", "224.0.0.81"),
    ]
    return pyroute2_reply(genl.CMD_NEW_DAEMON, attrs, "IPVS_CMD_ATTR_DAEMON", daemonmsg)


async def test_sync_daemons_are_read_started_and_stopped() -> None:
    backup = SyncDaemon(state=DaemonState.BACKUP, interface="lo", syncid=9)
    async with scripted(
        dump_of(daemon_message(2, "lo"), daemon_message(1, "eth0")),
        ack(),
        ack(errno.ENODEV),
        ack(errno.ESRCH),
        ack(),
    ) as (backend, requests):
        assert await backend.daemons() == (
            SyncDaemon(state=DaemonState.MASTER, interface="eth0", syncid=9, maxlen=1472),
            SyncDaemon(state=DaemonState.BACKUP, interface="lo", syncid=9, maxlen=1472),
        )
        await backend.start_daemon(backup)
        with pytest.raises(IpvsError) as caught:
            await backend.start_daemon(SyncDaemon(state=DaemonState.BACKUP, interface="nosuch0"))
        assert str(caught.value) == (
            "cannot start the backup sync daemon: no network interface named 'nosuch0'"
        )
        assert caught.value.errno == errno.ENODEV
        with pytest.raises(IpvsError, match=r"^cannot stop the master sync daemon: none is"):
            await backend.stop_daemon(DaemonState.MASTER)
        await backend.stop_daemon(DaemonState.BACKUP)
    assert requests[1] == genl.start_daemon_request(FAMILY, 2, backup)
    assert requests[4] == genl.stop_daemon_request(FAMILY, 5, DaemonState.BACKUP)
