"""service=pgsql: log in with asyncpg, run ``request`` (the SQL query) once, up when rows come back.

Called through :func:`checks.run`. asyncpg is an optional extra (``ldirector[pgsql]``), imported
here so that only configs using PostgreSQL need it. TLS is tried first and plain TCP used when
the server declines (libpq's ``sslmode=prefer``, DBD::Pg's default). Unlike ldirectord
the query runs once and the caller's timeout bounds the whole check.

Only the first row is asked for (an Execute limited to one row): up is "at least one row", and
a query producing endless rows makes the server send one.
"""

from __future__ import annotations

from typing import Any

from checks._io import describe, missing_driver, printable, underlying
from checks.types import PgsqlSpec, Result, Target


async def check(target: Target, spec: PgsqlSpec) -> Result:
    """Connect, run the query, and fetch its first row."""
    if not spec.login or not spec.query:
        return Result(False, "service=pgsql needs a login and a request (the SQL query)")
    try:
        import asyncpg
    except ImportError:
        return Result(False, missing_driver("pgsql", "asyncpg"))
    conn: Any = None
    try:
        conn = await asyncpg.connect(
            host=str(target.address),
            port=target.port,
            user=spec.login,
            password=spec.passwd,
            database=spec.database or None,
        )
        row = await conn.fetchrow(spec.query)
    except asyncpg.PostgresError as exc:
        state = getattr(exc, "sqlstate", None)
        return Result(False, f"PostgreSQL {printable(str(exc))}" + (f" ({state})" if state else ""))
    except asyncpg.InterfaceError as exc:
        return Result(False, underlying(exc) or f"PostgreSQL {printable(str(exc))}")
    except OSError as exc:  # ssl.SSLError included
        return Result(False, describe(exc))
    finally:
        if conn is not None:
            conn.terminate()
    if row is None:
        return Result(False, "PostgreSQL query returned no rows")
    return Result(True, "PostgreSQL query returned a row")
