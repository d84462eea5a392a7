"""service=pop, pops, imap and imaps against a private dovecot (TLS with a self-signed cert)."""

# ruff: noqa: S106 - the passwords here are the test daemons' own

from __future__ import annotations

from collections.abc import Iterator

import pytest
from part2.daemons_text import MAIL_PASSWORD, MAIL_USER, start_dovecot
from part2.support import (
    Daemon,
    assert_times_out_cleanly,
    cancel_at_many_points,
    hung_tcp,
    leak_free,
    probe,
    refused_tcp,
    running,
    target,
)

from checks.types import ImapSpec, PopSpec

pytestmark = pytest.mark.daemon


def pop(tls: bool = False) -> PopSpec:
    return PopSpec(tls=tls, login=MAIL_USER, passwd=MAIL_PASSWORD)


def imap(tls: bool = False) -> ImapSpec:
    return ImapSpec(tls=tls, login=MAIL_USER, passwd=MAIL_PASSWORD)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Daemon]:
    with running(start_dovecot()) as daemon:
        yield daemon


# --- POP3 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("tls", [False, True], ids=["pop", "pops"])
async def test_pop_login(dovecot: Daemon, tls: bool, host: str) -> None:
    port = dovecot.ports["pop3s" if tls else "pop3"]
    result = await probe(target(port, host), pop(tls))
    assert result.ok, result.reason
    assert result.reason.startswith(f"logged in as {MAIL_USER}: +OK")


async def test_pop_without_login_needs_the_greeting(dovecot: Daemon) -> None:
    result = await probe(target(dovecot.ports["pop3"]), PopSpec())
    assert result.ok, result.reason
    assert result.reason.startswith("+OK Dovecot")


@pytest.mark.parametrize("tls", [False, True], ids=["pop", "pops"])
async def test_pop_wrong_password_is_down(dovecot: Daemon, tls: bool) -> None:
    port = dovecot.ports["pop3s" if tls else "pop3"]
    result = await probe(target(port), PopSpec(tls=tls, login=MAIL_USER, passwd="wrong"))
    assert not result.ok
    assert result.reason == "POP3 -ERR [AUTH] Authentication failed. (login)"


async def test_pops_against_a_plain_port_is_a_tls_error(dovecot: Daemon) -> None:
    result = await probe(target(dovecot.ports["pop3"]), PopSpec(tls=True))
    assert not result.ok
    assert result.reason.startswith("TLS error: ")


async def test_pop_against_an_imap_server_is_down(dovecot: Daemon) -> None:
    result = await probe(target(dovecot.ports["imap"]), PopSpec())
    assert not result.ok
    assert result.reason.startswith("not a POP3 greeting: '* OK [CAPABILITY")


async def test_pop_refused_without_login_is_down() -> None:
    # ldirectord bug B7: without a login, a closed POP port counted as up.
    with refused_tcp() as port:
        result = await probe(target(port), PopSpec())
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("tls", [False, True], ids=["pop", "pops"])
async def test_pop_hung_times_out_without_leaks(tls: bool) -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(target(port), pop(tls))


# --- IMAP ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("tls", [False, True], ids=["imap", "imaps"])
async def test_imap_login(dovecot: Daemon, tls: bool, host: str) -> None:
    # The port is dovecot's private one, not 143/993: ldirectord bug B8 ignored it.
    port = dovecot.ports["imaps" if tls else "imap"]
    result = await probe(target(port, host), imap(tls))
    assert result.ok, result.reason
    assert result.reason.startswith(f"IMAP logged in as {MAIL_USER}: OK")


async def test_imap_without_login_needs_the_greeting(dovecot: Daemon) -> None:
    result = await probe(target(dovecot.ports["imaps"]), ImapSpec(tls=True))
    assert result.ok, result.reason
    assert result.reason.startswith("IMAP OK ")


@pytest.mark.parametrize("tls", [False, True], ids=["imap", "imaps"])
async def test_imap_wrong_password_is_down(dovecot: Daemon, tls: bool) -> None:
    port = dovecot.ports["imaps" if tls else "imap"]
    result = await probe(target(port), ImapSpec(tls=tls, login=MAIL_USER, passwd='wr"ong\\'))
    assert not result.ok
    assert result.reason == "IMAP LOGIN failed: NO [AUTHENTICATIONFAILED] Authentication failed."


async def test_imap_against_a_pop_server_is_down(dovecot: Daemon) -> None:
    result = await probe(target(dovecot.ports["pop3"]), ImapSpec())
    assert not result.ok
    assert result.reason == "not an IMAP greeting: '+OK Dovecot (Debian) ready.'"


async def test_imap_refused() -> None:
    with refused_tcp() as port:
        result = await probe(target(port), imap())
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("tls", [False, True], ids=["imap", "imaps"])
async def test_imap_hung_times_out_without_leaks(tls: bool) -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(target(port), imap(tls))


async def test_mail_checks_repeat_without_leaks(dovecot: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await probe(target(dovecot.ports["pop3s"]), pop(True))).ok
            assert (await probe(target(dovecot.ports["imaps"]), imap(True))).ok


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_cancelled_mid_exchange_leaks_nothing(dovecot: Daemon, tls: bool) -> None:
    await cancel_at_many_points(target(dovecot.ports["pop3s" if tls else "pop3"]), pop(tls))
    await cancel_at_many_points(target(dovecot.ports["imaps" if tls else "imap"]), imap(tls))
