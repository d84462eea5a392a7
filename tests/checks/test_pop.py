"""service=pop and pops against a private dovecot (TLS with a self-signed cert)."""

from __future__ import annotations

import pytest

from checks.types import PopSpec
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


def pop(tls: bool = False) -> PopSpec:
    return PopSpec(tls=tls, login=MAIL_USER, passwd=MAIL_PASSWORD)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("tls", [False, True], ids=["pop", "pops"])
async def test_pop_login(dovecot: Daemon, tls: bool, host: str) -> None:
    port = dovecot.ports["pop3s" if tls else "pop3"]
    result = await run_check(target(port, host), pop(tls))
    assert result.ok, result.reason
    assert result.reason.startswith(f"logged in as {MAIL_USER}: +OK")


async def test_pop_without_login_needs_the_greeting(dovecot: Daemon) -> None:
    result = await run_check(target(dovecot.ports["pop3"]), PopSpec())
    assert result.ok, result.reason
    assert result.reason.startswith("+OK Dovecot")


@pytest.mark.parametrize("tls", [False, True], ids=["pop", "pops"])
async def test_pop_wrong_password_is_down(dovecot: Daemon, tls: bool) -> None:
    port = dovecot.ports["pop3s" if tls else "pop3"]
    result = await run_check(target(port), PopSpec(tls=tls, login=MAIL_USER, passwd="wrong"))
    assert not result.ok
    assert result.reason == "POP3 -ERR [AUTH] Authentication failed. (login)"


async def test_pops_against_a_plain_port_is_a_tls_error(dovecot: Daemon) -> None:
    result = await run_check(target(dovecot.ports["pop3"]), PopSpec(tls=True))
    assert not result.ok
    assert result.reason.startswith("TLS error: ")


async def test_pop_against_an_imap_server_is_down(dovecot: Daemon) -> None:
    result = await run_check(target(dovecot.ports["imap"]), PopSpec())
    assert not result.ok
    assert result.reason.startswith("not a POP3 greeting: '* OK [CAPABILITY")


async def test_pop_refused_without_login_is_down() -> None:
    # ldirectord: without a login, a closed POP port counted as up.
    with refused_tcp() as port:
        result = await run_check(target(port), PopSpec())
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("tls", [False, True], ids=["pop", "pops"])
async def test_pop_hung_times_out_without_leaks(tls: bool) -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(target(port), pop(tls))


async def test_pop_repeats_without_leaks(dovecot: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await run_check(target(dovecot.ports["pop3s"]), pop(True))).ok


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_cancelled_mid_exchange_leaks_nothing(dovecot: Daemon, tls: bool) -> None:
    await cancel_at_many_points(target(dovecot.ports["pop3s" if tls else "pop3"]), pop(tls))
