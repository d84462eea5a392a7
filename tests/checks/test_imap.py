"""service=imap and imaps against a private dovecot (TLS with a self-signed cert)."""

from __future__ import annotations

import pytest

from checks.types import ImapSpec
from tests.support.checkrun import (
    assert_times_out_cleanly,
    cancel_at_many_points,
    leak_free,
    run_check,
    target,
)
from tests.support.daemons_text import MAIL_PASSWORD, MAIL_USER
from tests.support.servers import Daemon, hung_tcp, refused_tcp

pytestmark = pytest.mark.daemon


def imap(tls: bool = False) -> ImapSpec:
    return ImapSpec(tls=tls, login=MAIL_USER, passwd=MAIL_PASSWORD)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("tls", [False, True], ids=["imap", "imaps"])
async def test_imap_login(dovecot: Daemon, tls: bool, host: str) -> None:
    # The port is dovecot's private one, not 143/993: ldirectord bug ignored it.
    port = dovecot.ports["imaps" if tls else "imap"]
    result = await run_check(target(port, host), imap(tls))
    assert result.ok, result.reason
    assert result.reason.startswith(f"IMAP logged in as {MAIL_USER}: OK")


async def test_imap_without_login_needs_the_greeting(dovecot: Daemon) -> None:
    result = await run_check(target(dovecot.ports["imaps"]), ImapSpec(tls=True))
    assert result.ok, result.reason
    assert result.reason.startswith("IMAP OK ")


@pytest.mark.parametrize("tls", [False, True], ids=["imap", "imaps"])
async def test_imap_wrong_password_is_down(dovecot: Daemon, tls: bool) -> None:
    port = dovecot.ports["imaps" if tls else "imap"]
    result = await run_check(target(port), ImapSpec(tls=tls, login=MAIL_USER, passwd='wr"ong\\'))
    assert not result.ok
    assert result.reason == "IMAP LOGIN failed: NO [AUTHENTICATIONFAILED] Authentication failed."


async def test_imap_against_a_pop_server_is_down(dovecot: Daemon) -> None:
    result = await run_check(target(dovecot.ports["pop3"]), ImapSpec())
    assert not result.ok
    assert result.reason == "not an IMAP greeting: '+OK Dovecot (Debian) ready.'"


async def test_imap_refused() -> None:
    with refused_tcp() as port:
        result = await run_check(target(port), imap())
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("tls", [False, True], ids=["imap", "imaps"])
async def test_imap_hung_times_out_without_leaks(tls: bool) -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(target(port), imap(tls))


async def test_imap_repeats_without_leaks(dovecot: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await run_check(target(dovecot.ports["imaps"]), imap(True))).ok


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_cancelled_mid_exchange_leaks_nothing(dovecot: Daemon, tls: bool) -> None:
    await cancel_at_many_points(target(dovecot.ports["imaps" if tls else "imap"]), imap(tls))
