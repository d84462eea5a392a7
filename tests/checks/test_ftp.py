"""service=ftp against a private vsftpd on loopback (passive mode)."""

from __future__ import annotations

import re

import pytest

from checks.types import FtpSpec
from tests.support.checkrun import (
    assert_times_out_cleanly,
    cancel_at_many_points,
    leak_free,
    run_check,
    target,
)
from tests.support.daemons_text import FTP_FILE
from tests.support.servers import Daemon, hung_tcp, refused_tcp

pytestmark = pytest.mark.daemon

PAGE = FtpSpec(
    login="anonymous",
    passwd="ldirector@",
    request="/index.html",
    receive=re.compile(r"ldirector check page"),
)


async def test_anonymous_retr_matches_receive(vsftpd: Daemon) -> None:
    result = await run_check(target(vsftpd.ports["ftp"]), PAGE)
    assert result.ok, result.reason
    assert result.reason == f"FTP RETR /index.html: {len(FTP_FILE)} bytes, receive matched"
    assert result.elapsed == 0  # the harness times the check, not the check itself


async def test_ipv6_uses_epsv(vsftpd6: Daemon) -> None:
    result = await run_check(target(vsftpd6.ports["ftp"], "::1"), PAGE)
    assert result.ok, result.reason
    assert result.reason == f"FTP RETR /index.html: {len(FTP_FILE)} bytes, receive matched"


async def test_login_alone_when_no_file_is_named(vsftpd: Daemon) -> None:
    result = await run_check(target(vsftpd.ports["ftp"]), FtpSpec())
    assert result.ok, result.reason
    assert result.reason == "FTP logged in as anonymous"


async def test_content_without_receive_is_enough(vsftpd: Daemon) -> None:
    spec = FtpSpec(passwd="x@", request="/index.html")
    result = await run_check(target(vsftpd.ports["ftp"]), spec)
    assert result.ok, result.reason


async def test_failed_login_is_down(vsftpd: Daemon) -> None:
    spec = FtpSpec(login="nosuchuser", passwd="wrong", request="/index.html")
    result = await run_check(target(vsftpd.ports["ftp"]), spec)
    assert not result.ok
    assert result.reason == "FTP 530 Login incorrect. (login as nosuchuser)"


async def test_receive_not_in_file_is_down(vsftpd: Daemon) -> None:
    spec = FtpSpec(passwd="x@", request="/index.html", receive=re.compile("Welcome"))
    result = await run_check(target(vsftpd.ports["ftp"]), spec)
    assert not result.ok
    assert result.reason == "receive 'Welcome' not found in /index.html"


async def test_missing_file_is_down(vsftpd: Daemon) -> None:
    spec = FtpSpec(passwd="x@", request="/nope.html", receive=re.compile("x"))
    result = await run_check(target(vsftpd.ports["ftp"]), spec)
    assert not result.ok
    assert result.reason == "FTP 550 Failed to open file. (RETR /nope.html)"


async def test_repeated_checks_do_not_leak(vsftpd: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await run_check(target(vsftpd.ports["ftp"]), PAGE)).ok


async def test_refused() -> None:
    with refused_tcp() as port:
        result = await run_check(target(port), PAGE)
    assert not result.ok
    assert result.reason == "connection refused"


async def test_hung_server_times_out_without_leaks() -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(target(port), PAGE)


async def test_hung_over_ipv6() -> None:
    with hung_tcp("::1") as port:
        await assert_times_out_cleanly(target(port, "::1"), PAGE)


async def test_cancelled_mid_exchange_leaks_nothing(vsftpd: Daemon) -> None:
    await cancel_at_many_points(target(vsftpd.ports["ftp"]), PAGE)
