"""Health checks for real servers: one module per ldirectord service, one signature for all.

``run(target, spec)`` dispatches on the spec's type. The caller owns the timeout: either wrap
``run`` in ``asyncio.timeout`` or call ``probe(target, spec, timeout)``, which also turns a
timeout or a bug in a check into a down ``Result``. Every check is cancellation-safe. This
package never imports ldirector.
"""

from __future__ import annotations

import asyncio
import time
from typing import assert_never

from checks.types import (
    CheckSpec,
    ConnectSpec,
    DnsSpec,
    ExternalSpec,
    FtpSpec,
    HttpSpec,
    ImapSpec,
    LdapSpec,
    MysqlSpec,
    NntpSpec,
    NoneSpec,
    OracleSpec,
    PgsqlSpec,
    PingSpec,
    PopSpec,
    RadiusSpec,
    Result,
    SimpleTcpSpec,
    SipSpec,
    SmtpSpec,
    Target,
)

__all__ = ["CheckSpec", "Result", "Target", "probe", "run"]


async def run(target: Target, spec: CheckSpec) -> Result:
    """Run the check ``spec`` describes against ``target`` and time it."""
    started = time.monotonic()
    result = await _dispatch(target, spec)
    return Result(result.ok, result.reason, time.monotonic() - started)


async def probe(target: Target, spec: CheckSpec, timeout: float) -> Result:  # noqa: ASYNC109
    """Run one check within ``timeout`` seconds; never raises except on cancellation.

    A timeout becomes ``timed out after 3s``. Any other exception escaping a check is a bug in
    that check, reported as ``internal error: ...`` so that one bad check cannot stop the caller.
    """
    started = time.monotonic()
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            result = await _dispatch(target, spec)
    except TimeoutError as exc:
        if deadline.expired():
            result = Result(False, f"timed out after {format_seconds(timeout)}")
        else:  # a check let a socket-level timeout escape: a bug in that check
            result = Result(False, f"internal error: {exc!r}")
    except Exception as exc:  # the one boundary where a check's bug is contained
        result = Result(False, f"internal error: {type(exc).__name__}: {exc}")
    return Result(result.ok, result.reason, time.monotonic() - started)


def format_seconds(seconds: float) -> str:
    """``3s``, ``0.5s``: seconds as an operator wrote them in the config."""
    return f"{seconds:g}s"


async def _dispatch(target: Target, spec: CheckSpec) -> Result:
    # Imports are local so that a service whose optional driver is missing costs nothing
    # to the configs that do not use it.
    match spec:
        case NoneSpec():
            return Result(True, "no check")
        case ConnectSpec():
            from checks import connect

            return await connect.check(target, spec)
        case PingSpec():
            from checks import ping

            return await ping.check(target, spec)
        case ExternalSpec():
            from checks import external

            return await external.check(target, spec)
        case HttpSpec():
            from checks import http

            return await http.check(target, spec)
        case DnsSpec():
            from checks import dns

            return await dns.check(target, spec)
        case SimpleTcpSpec():
            from checks import simpletcp

            return await simpletcp.check(target, spec)
        case SipSpec():
            from checks import sip

            return await sip.check(target, spec)
        case FtpSpec():
            from checks import ftp

            return await ftp.check(target, spec)
        case SmtpSpec():
            from checks import smtp

            return await smtp.check(target, spec)
        case PopSpec():
            from checks import pop

            return await pop.check(target, spec)
        case ImapSpec():
            from checks import imap

            return await imap.check(target, spec)
        case NntpSpec():
            from checks import nntp

            return await nntp.check(target, spec)
        case LdapSpec():
            from checks import ldap

            return await ldap.check(target, spec)
        case MysqlSpec():
            from checks import mysql

            return await mysql.check(target, spec)
        case PgsqlSpec():
            from checks import pgsql

            return await pgsql.check(target, spec)
        case OracleSpec():
            from checks import oracle

            return await oracle.check(target, spec)
        case RadiusSpec():
            from checks import radius

            return await radius.check(target, spec)
        case _:
            assert_never(spec)
