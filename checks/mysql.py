"""service=mysql: log in with aiomysql, run ``request`` (the SQL query) once; up when it has rows.

Called through :func:`checks.run`. aiomysql is an optional extra (``ldirector[mysql]``), imported
here so that only configs using MySQL need it. Unlike ldirectord the query runs once
and the caller's timeout bounds the whole check.

The result is read unbuffered and only its first row is fetched: up is "at least one row", and a
query (or a hostile server) producing endless rows costs one row of memory. The rest is never
read; closing the connection abandons it.
"""

from __future__ import annotations

from checks._io import describe, missing_driver, printable, underlying
from checks.types import MysqlSpec, Result, Target


async def check(target: Target, spec: MysqlSpec) -> Result:
    """Connect, run the query, and fetch its first row."""
    if not spec.login or not spec.query:
        return Result(False, "service=mysql needs a login and a request (the SQL query)")
    try:
        import aiomysql
    except ImportError:
        return Result(False, missing_driver("mysql", "aiomysql"))
    conn = aiomysql.Connection(
        host=str(target.address),
        port=target.port,
        user=spec.login,
        password=spec.passwd,
        db=spec.database or None,
        autocommit=True,
    )
    try:
        # Connection._connect rather than aiomysql.connect(): the latter closes its socket on
        # errors but not on cancellation, and the caller's timeout cancels.
        await conn._connect()
        # Not closed: closing an unbuffered cursor reads the rest of the result.
        cursor = await conn.cursor(aiomysql.SSCursor)
        await cursor.execute(spec.query)
        row = await cursor.fetchone()
    except aiomysql.Error as exc:
        return Result(False, _reason(exc))
    except OSError as exc:
        return Result(False, describe(exc))
    finally:
        conn.close()
    if row is None:
        return Result(False, "MySQL query returned no rows")
    return Result(True, "MySQL query returned a row")


def _reason(exc: BaseException) -> str:
    cause = underlying(exc)
    if cause is not None:
        return cause
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return f"MySQL {args[0]} {printable(str(args[1]))}"
    return f"MySQL {printable(str(exc))}"
