"""Shared fixtures for the check tests: real daemons on loopback, dead ports, and a leak guard.

Daemons are session-scoped: each starts once, on free ports, with its state in a temporary
directory. Part 2's fixtures live in their own ``conftest_part2*``/``servers_part2*`` modules.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import servers
import trustme
from servers import Nginx


@pytest.fixture(scope="session")
def nginx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    """One nginx serving plain HTTP, HTTPS with a self-signed certificate, and a forward proxy."""
    binary = servers.need("nginx")
    tmp = tmp_path_factory.mktemp("nginx")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "::1", "localhost")
    cert.private_key_pem.write_to_path(str(tmp / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    web = Nginx(http=servers.free_port(), https=servers.free_port(), proxy=servers.free_port())
    conf = tmp / "nginx.conf"
    conf.write_text(servers.nginx_conf(tmp, web, tmp / "cert.pem", tmp / "key.pem"))
    log = tmp / "stdout.log"
    argv = [binary, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
    with servers.daemon(argv, log) as proc:
        for port in (web.http, web.https, web.proxy):
            servers.wait_tcp("127.0.0.1", port, proc, tmp / "error.log")
        yield web


@pytest.fixture(scope="session")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port of a dnsmasq answering ``www.test`` (A and PTR) over UDP and TCP."""
    tmp = tmp_path_factory.mktemp("dnsmasq")
    port = servers.free_port()
    with servers.daemon(servers.dnsmasq_argv(port), tmp / "dnsmasq.log") as proc:
        servers.wait_tcp("127.0.0.1", port, proc, tmp / "dnsmasq.log")
        yield port


@pytest.fixture(scope="session")
def kamailio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The port (UDP and TCP) of a kamailio answering OPTIONS for ``servers.SIP_LOGIN``."""
    binary = servers.need("kamailio")
    tmp = tmp_path_factory.mktemp("kamailio")
    port = servers.free_port()
    conf = tmp / "kamailio.cfg"
    conf.write_text(servers.kamailio_conf(port))
    argv = [binary, "-f", str(conf), "-DD", "-E", "-Y", str(tmp), "-P", str(tmp / "pid")]
    with servers.daemon(argv, tmp / "kamailio.log") as proc:
        servers.wait_udp_sip(port, proc, tmp / "kamailio.log")
        servers.wait_tcp("127.0.0.1", port, proc, tmp / "kamailio.log")
        yield port


def open_fds() -> set[str]:
    """This process's open file descriptors, by number."""
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
async def no_leaks() -> AsyncIterator[None]:
    """Fail the test if it leaves a file descriptor open or a task running."""
    before = open_fds()
    yield
    await asyncio.sleep(
        0.05
    )  # let transports finish closing (connection_lost runs on a later tick)
    leaked_fds = open_fds() - before
    tasks = asyncio.all_tasks() - {asyncio.current_task()}
    assert not tasks, f"tasks left running: {tasks}"
    assert not leaked_fds, f"file descriptors left open: {[_describe(fd) for fd in leaked_fds]}"


def _describe(fd: str) -> str:
    try:
        return f"{fd} -> {os.readlink(Path('/proc/self/fd') / fd)}"
    except OSError:
        return fd
