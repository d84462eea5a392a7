"""service=mysql, pgsql and oracle: mariadbd and postgres run privately; no Oracle server exists
in Debian, so Oracle is proven down against refused, hung and non-Oracle servers only."""

from __future__ import annotations

# ruff: noqa: S106 - the passwords here are the test daemons' own
from collections.abc import Iterator

import pytest
from part2.daemons_data import SQL_DB, SQL_PASSWORD, SQL_USER, start_mariadb, start_postgres
from part2.support import (
    Daemon,
    assert_times_out_cleanly,
    cancel_at_many_points,
    hung_tcp,
    leak_free,
    probe,
    refused_tcp,
    running,
    target,
)

from checks.types import MysqlSpec, OracleSpec, PgsqlSpec

pytestmark = pytest.mark.daemon
SqlSpecs = type[MysqlSpec] | type[PgsqlSpec] | type[OracleSpec]


@pytest.fixture(scope="session")
def mariadb() -> Iterator[Daemon]:
    with running(start_mariadb()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def postgres() -> Iterator[Daemon]:
    with running(start_postgres()) as daemon:
        yield daemon


def spec(kind: SqlSpecs, query: str = "SELECT id FROM alive", **changes: str) -> MysqlSpec:
    fields = {"login": SQL_USER, "passwd": SQL_PASSWORD, "database": SQL_DB, "query": query}
    fields.update(changes)
    made: MysqlSpec = kind(**fields)  # type: ignore[assignment]
    return made


# --- MySQL (mariadbd) -----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_mysql_rows_are_up(mariadb: Daemon, host: str) -> None:
    result = await probe(target(mariadb.ports["mysql"], host), spec(MysqlSpec))
    assert result.ok, result.reason
    assert result.reason == "MySQL query returned 1 row"


async def test_mysql_no_rows_is_down(mariadb: Daemon) -> None:
    result = await probe(target(mariadb.ports["mysql"]), spec(MysqlSpec, "SELECT id FROM empty"))
    assert (result.ok, result.reason) == (False, "MySQL query returned no rows")


async def test_mysql_wrong_password_is_down(mariadb: Daemon) -> None:
    result = await probe(target(mariadb.ports["mysql"]), spec(MysqlSpec, passwd="wrong"))
    assert not result.ok
    assert result.reason == (
        f"MySQL 1045 Access denied for user '{SQL_USER}'@'127.0.0.1' (using password: YES)"
    )


async def test_mysql_bad_query_is_down(mariadb: Daemon) -> None:
    result = await probe(target(mariadb.ports["mysql"]), spec(MysqlSpec, "SELECT * FROM nope"))
    assert not result.ok
    assert result.reason == f"MySQL 1146 Table '{SQL_DB}.nope' doesn't exist"


async def test_mysql_repeats_without_leaks(mariadb: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await probe(target(mariadb.ports["mysql"]), spec(MysqlSpec))).ok


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_pgsql_rows_are_up(postgres: Daemon, host: str) -> None:
    result = await probe(target(postgres.ports["pgsql"], host), spec(PgsqlSpec))
    assert result.ok, result.reason
    assert result.reason == "PostgreSQL query returned 1 row"


async def test_pgsql_no_rows_is_down(postgres: Daemon) -> None:
    result = await probe(target(postgres.ports["pgsql"]), spec(PgsqlSpec, "SELECT id FROM empty"))
    assert (result.ok, result.reason) == (False, "PostgreSQL query returned no rows")


async def test_pgsql_wrong_password_is_down(postgres: Daemon) -> None:
    result = await probe(target(postgres.ports["pgsql"]), spec(PgsqlSpec, passwd="wrong"))
    assert not result.ok
    assert result.reason == (
        f'PostgreSQL password authentication failed for user "{SQL_USER}" (28P01)'
    )


async def test_pgsql_bad_query_is_down(postgres: Daemon) -> None:
    result = await probe(target(postgres.ports["pgsql"]), spec(PgsqlSpec, "SELECT * FROM nope"))
    assert not result.ok
    assert result.reason == 'PostgreSQL relation "nope" does not exist (42P01)'


async def test_pgsql_repeats_without_leaks(postgres: Daemon) -> None:
    async with leak_free():
        for _ in range(5):
            assert (await probe(target(postgres.ports["pgsql"]), spec(PgsqlSpec))).ok


# --- Oracle: no server in Debian ------------------------------------------------------------


async def test_oracle_against_a_postgres_server_is_down(postgres: Daemon) -> None:
    result = await probe(target(postgres.ports["pgsql"]), spec(OracleSpec, "SELECT 1 FROM dual"))
    assert not result.ok
    assert result.reason.startswith("Oracle DPY-")


# --- every SQL check -----------------------------------------------------------------------------

KINDS = pytest.mark.parametrize("kind", [MysqlSpec, PgsqlSpec, OracleSpec])


@KINDS
async def test_refused(kind: SqlSpecs) -> None:
    with refused_tcp() as port:
        result = await probe(target(port), spec(kind))
    assert (result.ok, result.reason) == (False, "connection refused")


@KINDS
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_hung_server_times_out_without_leaks(kind: SqlSpecs, host: str) -> None:
    # ldirectord bug B10: its SQL checks had no timeout at all.
    with hung_tcp(host) as port:
        await assert_times_out_cleanly(target(port, host), spec(kind))


@KINDS
async def test_login_and_query_are_required(kind: SqlSpecs) -> None:
    result = await probe(target(1), spec(kind, query=""))
    assert not result.ok
    assert result.reason.endswith("needs a login and a request (the SQL query)")


async def test_cancelled_mid_exchange_leaks_nothing(mariadb: Daemon, postgres: Daemon) -> None:
    await cancel_at_many_points(target(mariadb.ports["mysql"]), spec(MysqlSpec))
    await cancel_at_many_points(target(postgres.ports["pgsql"]), spec(PgsqlSpec))
