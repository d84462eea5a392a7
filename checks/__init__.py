"""Health checks for real servers: one module per ldirectord service, one signature for all.

``run(target, spec)`` dispatches on the spec's type and speaks that service's protocol; that is
all. The caller is the harness: it owns the timeout (wrap ``run`` in ``asyncio.timeout``), the
timing (``Result.elapsed`` is left at 0 for it to fill in), and the containment of bugs. A check
turns every failure it expects from a server (refused, reset, TLS, protocol, bad answer) into a
down ``Result``; any other exception escaping ``run`` is a bug in that check. Every check is
cancellation-safe: cancelled at any await, it leaves no socket, task, thread or process behind.
This package never imports ldirector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from checks.types import (
    AgentSpec,
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

if TYPE_CHECKING:  # the probe's machinery is imported with the first check that runs
    import asyncio

    from checks.probe import Done, Outcome, Probe

__all__ = ["CheckSpec", "Result", "Target", "begin", "run"]


def begin(target: Target, spec: CheckSpec, done: Done) -> Probe | None:
    """Start the check as a probe, without a task, when it has that form (connect, and plain
    HTTP to the real itself); None when it runs only under :func:`run`.

    ``done`` is called once, on a later turn of the loop, with the ``Result`` or with the
    exception of a bug; not at all after ``Probe.cancel()``. The caller owns the deadline.
    """
    match spec:
        case ConnectSpec():
            from checks import connect

            return connect.begin(target, done)
        case HttpSpec():
            from checks import http

            return http.begin(target, spec, done)
    return None


async def run(target: Target, spec: CheckSpec) -> Result:
    """Run the check ``spec`` describes against ``target``, once, without a deadline of its own."""
    import asyncio

    outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    probe = begin(target, spec, outcome.set_result)
    if probe is not None:
        try:
            ended = await outcome
        finally:
            probe.cancel()  # cancelled while waiting: the socket closes now
        if isinstance(ended, Exception):
            raise ended
        return ended
    # Imports are local so that a service whose optional driver is missing costs nothing
    # to the configs that do not use it.
    match spec:
        case NoneSpec():
            return Result(True, "no check")
        case ConnectSpec():  # pragma: no cover - begin() starts every one
            raise AssertionError("a connect check runs as a probe")
        case PingSpec():
            from checks import ping

            return await ping.check(target, spec)
        case ExternalSpec():
            from checks import external

            return await external.check(target, spec)
        case AgentSpec():
            from checks import agent

            return await agent.check(target, spec)
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
