"""service=mysql: log in with aiomysql, run ``request`` (the SQL query) once; up when it has rows.

Called through :func:`checks.run`. aiomysql is an optional extra (``ldirector[mysql]``), imported
here so that only configs using MySQL need it. Unlike ldirectord (bug B10) the query runs once
and the caller's timeout bounds the whole check.
"""

from __future__ import annotations

from checks._lines import missing_driver, printable, underlying
from checks.types import MysqlSpec, Result, Target


async def check(target: Target, spec: MysqlSpec) -> Result:
    """Connect, run the query, count the rows."""
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
        async with conn.cursor() as cursor:
            await cursor.execute(spec.query)
            rows = await cursor.fetchall()
    except aiomysql.Error as exc:
        return Result(False, _reason(exc))
    except OSError as exc:
        return Result(False, underlying(exc) or printable(str(exc)))
    finally:
        conn.close()
    if not rows:
        return Result(False, "MySQL query returned no rows")
    return Result(True, f"MySQL query returned {len(rows)} row{'s' if len(rows) != 1 else ''}")


def _reason(exc: BaseException) -> str:
    cause = underlying(exc)
    if cause is not None:
        return cause
    args = exc.args
    if len(args) >= 2 and isinstance(args[0], int):
        return f"MySQL {args[0]} {printable(str(args[1]))}"
    return f"MySQL {printable(str(exc))}"
