"""service=mysql against a private mariadbd."""

from __future__ import annotations

import pytest

from checks.types import MysqlSpec
from tests.support.checkrun import (
    assert_times_out_cleanly,
    cancel_at_many_points,
    leak_free,
    measured_check,
    run_check,
    target,
)
from tests.support.daemons_data import SQL_DB, SQL_USER, sql_spec
from tests.support.servers import Daemon, hung_tcp, refused_tcp

pytestmark = pytest.mark.daemon


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_rows_are_up(mariadb: Daemon, host: str) -> None:
    result = await run_check(target(mariadb.ports["mysql"], host), sql_spec(MysqlSpec))
    assert result.ok, result.reason
    assert result.reason == "MySQL query returned a row"


async def test_no_rows_is_down(mariadb: Daemon) -> None:
    spec = sql_spec(MysqlSpec, "SELECT id FROM empty")
    result = await run_check(target(mariadb.ports["mysql"]), spec)
    assert (result.ok, result.reason) == (False, "MySQL query returned no rows")


async def test_wrong_password_is_down(mariadb: Daemon) -> None:
    result = await run_check(target(mariadb.ports["mysql"]), sql_spec(MysqlSpec, passwd="wrong"))
    assert not result.ok
    assert result.reason == (
        f"MySQL 1045 Access denied for user '{SQL_USER}'@'127.0.0.1' (using password: YES)"
    )


async def test_bad_query_is_down(mariadb: Daemon) -> None:
    spec = sql_spec(MysqlSpec, "SELECT * FROM nope")
    result = await run_check(target(mariadb.ports["mysql"]), spec)
    assert not result.ok
    assert result.reason == f"MySQL 1146 Table '{SQL_DB}.nope' doesn't exist"


async def test_repeats_without_leaks(mariadb: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await run_check(target(mariadb.ports["mysql"]), sql_spec(MysqlSpec))).ok


# Ten million rows, streamed by the server as they are made: a cross join of ten digits, seven
# times over.
DIGITS = "(SELECT 0 d UNION ALL " + " UNION ALL ".join(f"SELECT {i}" for i in range(1, 10)) + ")"
ENDLESS = "SELECT 1 FROM " + ", ".join(f"{DIGITS} t{i}" for i in range(7))  # noqa: S608


async def test_endless_rows_are_judged_by_the_first(mariadb: Daemon) -> None:
    where = target(mariadb.ports["mysql"])
    result, elapsed, peak = await measured_check(where, sql_spec(MysqlSpec, ENDLESS), 5)
    assert (result.ok, result.reason) == (True, "MySQL query returned a row")
    assert elapsed < 2
    assert peak < 4 << 20, f"{peak} bytes allocated for one row"


async def test_refused() -> None:
    with refused_tcp() as port:
        result = await run_check(target(port), sql_spec(MysqlSpec))
    assert (result.ok, result.reason) == (False, "connection refused")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_hung_server_times_out_without_leaks(host: str) -> None:
    # ldirectord: its SQL checks had no timeout at all.
    with hung_tcp(host) as port:
        await assert_times_out_cleanly(target(port, host), sql_spec(MysqlSpec))


async def test_login_and_query_are_required() -> None:
    result = await run_check(target(1), sql_spec(MysqlSpec, query=""))
    assert (result.ok, result.reason) == (
        False,
        "service=mysql needs a login and a request (the SQL query)",
    )


async def test_cancelled_mid_exchange_leaks_nothing(mariadb: Daemon) -> None:
    await cancel_at_many_points(target(mariadb.ports["mysql"]), sql_spec(MysqlSpec))
