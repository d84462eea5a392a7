"""service=oracle: log in with python-oracledb (thin mode, asyncio), run ``request`` once.

Called through :func:`checks.run`. oracledb is an optional extra (``ldirector[oracle]``),
imported here so that only configs using Oracle need it. ``database`` is the SID, as in
ldirectord's ``dbi:Oracle:sid=...``. Up when the query returns rows. Unlike ldirectord
the query runs once and the caller's timeout bounds the whole check.

Only the first row is fetched, and the cursor asks the server for one row at a time: a query
producing endless rows costs one row of memory.
"""

from __future__ import annotations

import contextlib
from typing import Any

from checks._io import missing_driver, printable, underlying
from checks.types import OracleSpec, Result, Target


async def check(target: Target, spec: OracleSpec) -> Result:
    """Connect, run the query, and fetch its first row."""
    if not spec.login or not spec.query:
        return Result(False, "service=oracle needs a login and a request (the SQL query)")
    try:
        import oracledb
    except ImportError:
        return Result(False, missing_driver("oracle", "oracledb"))
    conn: Any = None
    try:
        conn = await oracledb.connect_async(
            user=spec.login,
            password=spec.passwd,
            host=str(target.address),
            port=target.port,
            sid=spec.database or None,
        )
        cursor = conn.cursor()
        cursor.prefetchrows = 1
        cursor.arraysize = 1
        await cursor.execute(spec.query)
        row = await cursor.fetchone()
    except oracledb.Error as exc:
        return Result(False, underlying(exc) or _reason(exc))
    finally:
        if conn is not None:
            conn_close = conn.close
            conn = None
            with contextlib.suppress(oracledb.Error):
                await conn_close()
    if row is None:
        return Result(False, "Oracle query returned no rows")
    return Result(True, "Oracle query returned a row")


def _reason(exc: BaseException) -> str:
    # "DPY-6005: cannot connect to database (CONNECTION_ID=...).\n[Errno 111] ..." -> first line,
    # without the connection id nobody can act on.
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"Oracle {printable(first.split(' (CONNECTION_ID=')[0])}"
