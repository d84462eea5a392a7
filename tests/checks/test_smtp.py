"""service=smtp and submission against aiosmtpd, a real SMTP server, run as its own process."""

from __future__ import annotations

import pytest

from checks.types import SmtpSpec
from tests.support.checkrun import (
    assert_times_out_cleanly,
    cancel_at_many_points,
    run_check,
    target,
)
from tests.support.servers import Daemon, hung_tcp, refused_tcp

pytestmark = pytest.mark.daemon


async def test_greeting_and_ehlo(smtpd: Daemon) -> None:
    result = await run_check(target(smtpd.ports["smtp"]), SmtpSpec())
    assert result.ok, result.reason
    assert result.reason.startswith("SMTP 250 ")


async def test_submission_is_the_same_exchange(smtpd: Daemon) -> None:
    # service=submission builds the same SmtpSpec; only the default port (587) differs.
    results = [await run_check(target(smtpd.ports["smtp"]), SmtpSpec()) for _ in range(3)]
    assert all(r.ok for r in results)


async def test_helo_refused_is_down(refusing_smtpd: Daemon) -> None:
    result = await run_check(target(refusing_smtpd.ports["smtp"]), SmtpSpec())
    assert not result.ok
    assert result.reason == "SMTP 550 5.7.1 Client host rejected: not on the list (HELO)"


async def test_refused() -> None:
    with refused_tcp() as port:
        result = await run_check(target(port), SmtpSpec())
    assert (result.ok, result.reason) == (False, "connection refused")


async def test_hung_server_times_out_without_leaks() -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(target(port), SmtpSpec())


async def test_cancelled_mid_exchange_leaks_nothing(smtpd: Daemon) -> None:
    await cancel_at_many_points(target(smtpd.ports["smtp"]), SmtpSpec())
