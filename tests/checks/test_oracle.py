"""service=oracle: no Oracle server exists in Debian, so the check is proven down against
refused, hung and non-Oracle servers only."""

from __future__ import annotations

import pytest

from checks.types import OracleSpec
from tests.support.checkrun import assert_times_out_cleanly, run_check, target
from tests.support.daemons_data import sql_spec
from tests.support.servers import Daemon, hung_tcp, refused_tcp


@pytest.mark.daemon
async def test_against_a_postgres_server_is_down(postgres: Daemon) -> None:
    spec = sql_spec(OracleSpec, "SELECT 1 FROM dual")
    result = await run_check(target(postgres.ports["pgsql"]), spec)
    assert not result.ok
    assert result.reason.startswith("Oracle DPY-")


async def test_refused() -> None:
    with refused_tcp() as port:
        result = await run_check(target(port), sql_spec(OracleSpec))
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_hung_server_times_out_without_leaks(host: str) -> None:
    with hung_tcp(host) as port:
        await assert_times_out_cleanly(target(port, host), sql_spec(OracleSpec))


async def test_login_and_query_are_required() -> None:
    result = await run_check(target(1), sql_spec(OracleSpec, query=""))
    assert (result.ok, result.reason) == (
        False,
        "service=oracle needs a login and a request (the SQL query)",
    )
