"""Fixtures for the check tests: real daemons on loopback, and a leak guard.

Each daemon is session-scoped: it starts once, when the first test needing it runs, on free
ports with its state in a private directory, and is stopped with its whole process group at the
end. The daemons themselves are built in ``tests.support``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.checkrun import leak_free
from tests.support.daemons_data import start_freeradius, start_mariadb, start_postgres, start_slapd
from tests.support.daemons_text import (
    start_aiosmtpd,
    start_dovecot,
    start_jamnntpd,
    start_vsftpd,
)
from tests.support.daemons_web import Nginx, start_dnsmasq, start_kamailio, start_nginx
from tests.support.servers import Daemon, running


@pytest.fixture
async def no_leaks() -> AsyncIterator[None]:
    """Fail the test if it leaves a file descriptor open, a task running or a thread behind."""
    async with leak_free():
        yield


# --- web, DNS, SIP -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nginx() -> Iterator[Nginx]:
    """The ports of one nginx serving HTTP, HTTPS (self-signed) and a forward proxy."""
    daemon, ports = start_nginx()
    with running(daemon):
        yield ports


@pytest.fixture(scope="session")
def dnsmasq() -> Iterator[int]:
    """The port of a dnsmasq answering ``www.test`` (A, AAAA, PTR) and a few other records."""
    with running(start_dnsmasq()) as daemon:
        yield daemon.ports["dns"]


@pytest.fixture(scope="session")
def kamailio() -> Iterator[int]:
    """The port (UDP and TCP) of a kamailio answering OPTIONS for ``SIP_LOGIN``."""
    with running(start_kamailio()) as daemon:
        yield daemon.ports["sip"]


# --- line protocols ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def vsftpd() -> Iterator[Daemon]:
    with running(start_vsftpd()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def vsftpd6() -> Iterator[Daemon]:
    """vsftpd on ::1: it listens on one address family per instance."""
    with running(start_vsftpd("::1")) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def smtpd() -> Iterator[Daemon]:
    with running(start_aiosmtpd()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def refusing_smtpd() -> Iterator[Daemon]:
    """An SMTP server that greets, then refuses EHLO and HELO."""
    with running(start_aiosmtpd("tests.support.daemons_text.RefuseEveryone")) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Daemon]:
    """dovecot serving pop3, pop3s, imap and imaps."""
    with running(start_dovecot()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def nntpd() -> Iterator[Daemon]:
    with running(start_jamnntpd()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def closed_nntpd() -> Iterator[Daemon]:
    """The same server configured to admit no reader from 127.0.0.1: it greets with 502."""
    with running(start_jamnntpd(allowed="127.0.0.9")) as daemon:
        yield daemon


# --- directories, databases, RADIUS ------------------------------------------------------------


@pytest.fixture(scope="session")
def slapd() -> Iterator[Daemon]:
    with running(start_slapd()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def mariadb() -> Iterator[Daemon]:
    with running(start_mariadb()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def postgres() -> Iterator[Daemon]:
    with running(start_postgres()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def radiusd() -> Iterator[Daemon]:
    with running(start_freeradius()) as daemon:
        yield daemon
