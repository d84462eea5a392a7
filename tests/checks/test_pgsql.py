"""service=pgsql against a private postgres, password logins over TCP."""

from __future__ import annotations

import pytest

from checks.types import PgsqlSpec
from tests.support.checkrun import (
    assert_times_out_cleanly,
    cancel_at_many_points,
    leak_free,
    measured_check,
    run_check,
    target,
)
from tests.support.daemons_data import SQL_USER, sql_spec
from tests.support.servers import Daemon, hung_tcp, refused_tcp

pytestmark = pytest.mark.daemon


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_rows_are_up(postgres: Daemon, host: str) -> None:
    result = await run_check(target(postgres.ports["pgsql"], host), sql_spec(PgsqlSpec))
    assert result.ok, result.reason
    assert result.reason == "PostgreSQL query returned a row"


async def test_no_rows_is_down(postgres: Daemon) -> None:
    spec = sql_spec(PgsqlSpec, "SELECT id FROM empty")
    result = await run_check(target(postgres.ports["pgsql"]), spec)
    assert (result.ok, result.reason) == (False, "PostgreSQL query returned no rows")


async def test_wrong_password_is_down(postgres: Daemon) -> None:
    result = await run_check(target(postgres.ports["pgsql"]), sql_spec(PgsqlSpec, passwd="wrong"))
    assert not result.ok
    assert result.reason == (
        f'PostgreSQL password authentication failed for user "{SQL_USER}" (28P01)'
    )


async def test_bad_query_is_down(postgres: Daemon) -> None:
    spec = sql_spec(PgsqlSpec, "SELECT * FROM nope")
    result = await run_check(target(postgres.ports["pgsql"]), spec)
    assert not result.ok
    assert result.reason == 'PostgreSQL relation "nope" does not exist (42P01)'


async def test_repeats_without_leaks(postgres: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await run_check(target(postgres.ports["pgsql"]), sql_spec(PgsqlSpec))).ok


# Ten million rows, made one at a time as they are asked for (a set-returning function in the
# select list is not materialised first).
ENDLESS = "SELECT generate_series(1, 10000000)"


async def test_endless_rows_are_judged_by_the_first(postgres: Daemon) -> None:
    where = target(postgres.ports["pgsql"])
    result, elapsed, peak = await measured_check(where, sql_spec(PgsqlSpec, ENDLESS), 5)
    assert (result.ok, result.reason) == (True, "PostgreSQL query returned a row")
    assert elapsed < 2
    assert peak < 4 << 20, f"{peak} bytes allocated for one row"


async def test_refused() -> None:
    with refused_tcp() as port:
        result = await run_check(target(port), sql_spec(PgsqlSpec))
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_hung_server_times_out_without_leaks(host: str) -> None:
    # ldirectord: its SQL checks had no timeout at all.
    with hung_tcp(host) as port:
        await assert_times_out_cleanly(target(port, host), sql_spec(PgsqlSpec))


async def test_login_and_query_are_required() -> None:
    result = await run_check(target(1), sql_spec(PgsqlSpec, query=""))
    assert (result.ok, result.reason) == (
        False,
        "service=pgsql needs a login and a request (the SQL query)",
    )


async def test_cancelled_mid_exchange_leaks_nothing(postgres: Daemon) -> None:
    await cancel_at_many_points(target(postgres.ports["pgsql"]), sql_spec(PgsqlSpec))
