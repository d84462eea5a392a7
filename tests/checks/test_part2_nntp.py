"""service=nntp against JamNNTPd, a real NNTP server from Debian, run privately."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from part2.daemons_text import start_jamnntpd
from part2.support import (
    Daemon,
    assert_times_out_cleanly,
    cancel_at_many_points,
    hung_tcp,
    probe,
    refused_tcp,
    running,
    target,
)

from checks.types import NntpSpec

pytestmark = pytest.mark.daemon


@pytest.fixture(scope="session")
def nntpd() -> Iterator[Daemon]:
    with running(start_jamnntpd()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def closed_nntpd() -> Iterator[Daemon]:
    """The same server configured to admit no reader from 127.0.0.1: it greets with 502."""
    with running(start_jamnntpd(allowed="127.0.0.9")) as daemon:
        yield daemon


async def test_greeting_200_is_up(nntpd: Daemon) -> None:
    result = await probe(target(nntpd.ports["nntp"]), NntpSpec())
    assert result.ok, result.reason
    assert result.reason.startswith("NNTP 200 Welcome to JamNNTPd")


async def test_greeting_502_is_down(closed_nntpd: Daemon) -> None:
    result = await probe(target(closed_nntpd.ports["nntp"]), NntpSpec())
    assert not result.ok
    assert result.reason == "NNTP 502 Access denied. (greeting)"


async def test_refused() -> None:
    with refused_tcp() as port:
        result = await probe(target(port), NntpSpec())
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_hung_server_times_out_without_leaks(host: str) -> None:
    # ldirectord bug B23: its connect had no timeout at all.
    with hung_tcp(host) as port:
        await assert_times_out_cleanly(target(port, host), NntpSpec())


async def test_cancelled_mid_exchange_leaks_nothing(nntpd: Daemon) -> None:
    await cancel_at_many_points(target(nntpd.ports["nntp"]), NntpSpec())
