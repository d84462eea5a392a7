"""service=smtp and submission against aiosmtpd, a real SMTP server, run as its own process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from part2.daemons_text import start_aiosmtpd
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

from checks.types import SmtpSpec

pytestmark = pytest.mark.daemon


@pytest.fixture(scope="session")
def smtpd() -> Iterator[Daemon]:
    with running(start_aiosmtpd()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def refusing_smtpd() -> Iterator[Daemon]:
    with running(start_aiosmtpd("part2.daemons_text.RefuseEveryone")) as daemon:
        yield daemon


async def test_greeting_and_ehlo(smtpd: Daemon) -> None:
    result = await probe(target(smtpd.ports["smtp"]), SmtpSpec())
    assert result.ok, result.reason
    assert result.reason.startswith("SMTP 250 ")


async def test_submission_is_the_same_exchange(smtpd: Daemon) -> None:
    # service=submission builds the same SmtpSpec; only the default port (587) differs.
    results = [await probe(target(smtpd.ports["smtp"]), SmtpSpec()) for _ in range(3)]
    assert all(r.ok for r in results)


async def test_helo_refused_is_down(refusing_smtpd: Daemon) -> None:
    result = await probe(target(refusing_smtpd.ports["smtp"]), SmtpSpec())
    assert not result.ok
    assert result.reason == "SMTP 550 5.7.1 Client host rejected: not on the list (HELO)"


async def test_refused() -> None:
    with refused_tcp() as port:
        result = await probe(target(port), SmtpSpec())
    assert (result.ok, result.reason) == (False, "connection refused")


async def test_hung_server_times_out_without_leaks() -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(target(port), SmtpSpec())


async def test_cancelled_mid_exchange_leaks_nothing(smtpd: Daemon) -> None:
    await cancel_at_many_points(target(smtpd.ports["smtp"]), SmtpSpec())
