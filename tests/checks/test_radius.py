"""service=radius against a private freeradius with one client and one user."""

from __future__ import annotations

import socket

import pytest

from checks.types import RadiusSpec
from tests.support.checkrun import (
    assert_times_out_cleanly,
    cancel_at_many_points,
    leak_free,
    run_check,
    target,
)
from tests.support.daemons_data import (
    RADIUS_LOCKED,
    RADIUS_PASSWORD,
    RADIUS_SECRET,
    RADIUS_USER,
)
from tests.support.servers import Daemon, free_port, hung_udp

pytestmark = pytest.mark.daemon
GOOD = RadiusSpec(login=RADIUS_USER, passwd=RADIUS_PASSWORD, secret=RADIUS_SECRET)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_access_accept_is_up(radiusd: Daemon, host: str) -> None:
    result = await run_check(target(radiusd.ports["radius"], host), GOOD)
    assert result.ok, result.reason
    assert result.reason == f"RADIUS Access-Accept: Welcome, {RADIUS_USER}"


async def test_access_reject_is_down(radiusd: Daemon) -> None:
    spec = RadiusSpec(login=RADIUS_USER, passwd="wrong", secret=RADIUS_SECRET)
    result = await run_check(target(radiusd.ports["radius"]), spec)
    assert not result.ok
    assert result.reason.startswith("RADIUS Access-Reject")


async def test_reject_reply_message_is_quoted(radiusd: Daemon) -> None:
    spec = RadiusSpec(login=RADIUS_LOCKED, passwd="x", secret=RADIUS_SECRET)
    result = await run_check(target(radiusd.ports["radius"]), spec)
    assert (result.ok, result.reason) == (False, "RADIUS Access-Reject: Account locked")


async def test_unknown_user_is_down(radiusd: Daemon) -> None:
    spec = RadiusSpec(login="mallory", passwd="x", secret=RADIUS_SECRET)
    result = await run_check(target(radiusd.ports["radius"]), spec)
    assert (result.ok, result.reason) == (False, "RADIUS Access-Reject")


async def test_wrong_secret_never_counts_as_up(radiusd: Daemon) -> None:
    # freeradius drops a request whose Message-Authenticator does not verify: no answer at all.
    spec = RadiusSpec(login=RADIUS_USER, passwd=RADIUS_PASSWORD, secret="not-the-secret")
    await assert_times_out_cleanly(target(radiusd.ports["radius"]), spec, seconds=1.5)


async def test_repeats_without_leaks(radiusd: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await run_check(target(radiusd.ports["radius"]), GOOD)).ok


async def test_closed_port_is_refused() -> None:
    # Nothing listens: the ICMP port unreachable that comes back is reported at once.
    port = free_port(socket.SOCK_DGRAM)
    result = await run_check(target(port), GOOD, seconds=3)
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_silent_server_times_out_without_leaks(host: str) -> None:
    with hung_udp(host) as port:
        await assert_times_out_cleanly(target(port, host), GOOD, seconds=1.5)


async def test_cancelled_mid_exchange_leaks_nothing(radiusd: Daemon) -> None:
    await cancel_at_many_points(target(radiusd.ports["radius"]), GOOD)
