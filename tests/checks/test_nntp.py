"""service=nntp against JamNNTPd, a real NNTP server from Debian, run privately."""

from __future__ import annotations

import pytest

from checks.types import NntpSpec
from tests.support.checkrun import (
    assert_times_out_cleanly,
    cancel_at_many_points,
    run_check,
    target,
)
from tests.support.servers import Daemon, hung_tcp, refused_tcp

pytestmark = pytest.mark.daemon


async def test_greeting_200_is_up(nntpd: Daemon) -> None:
    result = await run_check(target(nntpd.ports["nntp"]), NntpSpec())
    assert result.ok, result.reason
    assert result.reason.startswith("NNTP 200 Welcome to JamNNTPd")


async def test_greeting_502_is_down(closed_nntpd: Daemon) -> None:
    result = await run_check(target(closed_nntpd.ports["nntp"]), NntpSpec())
    assert not result.ok
    assert result.reason == "NNTP 502 Access denied. (greeting)"


async def test_refused() -> None:
    with refused_tcp() as port:
        result = await run_check(target(port), NntpSpec())
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_hung_server_times_out_without_leaks(host: str) -> None:
    # ldirectord: its connect had no timeout at all.
    with hung_tcp(host) as port:
        await assert_times_out_cleanly(target(port, host), NntpSpec())


async def test_cancelled_mid_exchange_leaks_nothing(nntpd: Daemon) -> None:
    await cancel_at_many_points(target(nntpd.ports["nntp"]), NntpSpec())
