"""Check specs from effective settings: which ``checks.types`` spec each real gets.

Pure. This is where ldirectord's per-service defaults live (FTP and SIP logins, the ``/`` added to
requests, DNS over TCP on TCP virtuals, simpletcp's ``\\n``) so that checks receive ready values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import assert_never

from checks.types import (
    CheckSpec,
    ConnectSpec,
    DnsSpec,
    ExternalSpec,
    FtpSpec,
    HttpMethod,
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
    SimpleTcpSpec,
    SipSpec,
    SmtpSpec,
)
from ldirector.config.model import CheckType, Protocol, Service

_ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckInputs:
    """The effective per-virtual settings a spec is built from."""

    service: Service
    protocol: Protocol
    checktype: CheckType
    request: str | None  # as written, None when unset
    receive: re.Pattern[str] | None
    httpmethod: HttpMethod
    virtualhost: str | None
    login: str
    passwd: str
    database: str
    secret: str
    checkcommand: str
    checktimeout: float
    checkcount: int
    httpsverify: bool
    hostname: str


def normalize_request(request: str | None) -> str:
    """ldirectord's request: ``/`` when unset, a leading ``/`` added, absolute URLs kept."""
    if not request:
        return "/"
    if _ABSOLUTE_URL.match(request) or request.startswith("/"):
        return request
    return "/" + request


def _bare(request: str | None) -> str:
    """The request without ldirectord's leading ``/`` (DNS names, LDAP bases, SQL, simpletcp)."""
    return normalize_request(request)[1:] if not _ABSOLUTE_URL.match(request or "") else ""


def negotiate_spec(c: CheckInputs) -> CheckSpec:
    """The service check of ``checktype=negotiate`` (and of the negotiate rounds of ``N``)."""
    match c.service:
        case Service.HTTP | Service.HTTPS | Service.HTTP_PROXY:
            return HttpSpec(
                tls=c.service is Service.HTTPS,
                proxy=c.service is Service.HTTP_PROXY,
                request=normalize_request(c.request),
                receive=c.receive,
                method=c.httpmethod,
                virtualhost=c.virtualhost,
                verify_tls=c.httpsverify,
            )
        case Service.DNS:
            return DnsSpec(
                query=_bare(c.request), receive=c.receive, tcp=c.protocol is Protocol.TCP
            )
        case Service.SIMPLETCP:
            return SimpleTcpSpec(request=_bare(c.request).replace("\\n", "\n"), receive=c.receive)
        case Service.SIP:
            # B15 fixed: the default login applies whether service= was written or inferred.
            return SipSpec(login=c.login or f"ldirectord@{c.hostname}")
        case Service.FTP:
            return FtpSpec(
                login=c.login or "anonymous",
                passwd=c.passwd or f"ldirectord@{c.hostname}",
                request=normalize_request(c.request),
                receive=c.receive,
            )
        case Service.SMTP | Service.SUBMISSION:
            return SmtpSpec()
        case Service.POP | Service.POPS:
            return PopSpec(tls=c.service is Service.POPS, login=c.login, passwd=c.passwd)
        case Service.IMAP | Service.IMAPS:
            return ImapSpec(tls=c.service is Service.IMAPS, login=c.login, passwd=c.passwd)
        case Service.NNTP:
            return NntpSpec()
        case Service.LDAP | Service.LDAPS:
            return LdapSpec(
                tls=c.service is Service.LDAPS,
                base=_bare(c.request),
                receive=c.receive,
                login=c.login,
                passwd=c.passwd,
            )
        case Service.MYSQL:
            return MysqlSpec(login=c.login, passwd=c.passwd, database=c.database, query=_sql(c))
        case Service.PGSQL:
            return PgsqlSpec(login=c.login, passwd=c.passwd, database=c.database, query=_sql(c))
        case Service.ORACLE:
            return OracleSpec(login=c.login, passwd=c.passwd, database=c.database, query=_sql(c))
        case Service.RADIUS:
            return RadiusSpec(login=c.login, passwd=c.passwd, secret=c.secret)
        case Service.NONE:
            return NoneSpec()
        case _:  # pragma: no cover
            assert_never(c.service)


def _sql(c: CheckInputs) -> str:
    return (c.request or "").strip()


def connect_spec(c: CheckInputs) -> CheckSpec:
    """A plain connect check; on UDP services ldirectord pings instead."""
    if c.protocol is Protocol.UDP:
        return PingSpec(count=c.checkcount, attempt_timeout=c.checktimeout)
    return ConnectSpec()


def primary_spec(c: CheckInputs, negotiate: CheckSpec, connect: CheckSpec) -> CheckSpec | None:
    """The check the checktype runs each round (COMBINED: its negotiate rounds)."""
    match c.checktype:
        case CheckType.CONNECT:
            return connect
        case CheckType.NEGOTIATE | CheckType.COMBINED:
            return negotiate
        case CheckType.PING:
            return PingSpec(count=c.checkcount, attempt_timeout=c.checktimeout)
        case CheckType.EXTERNAL:
            return ExternalSpec(command=c.checkcommand)
        case CheckType.EXTERNAL_PERL:
            return ExternalSpec(command=c.checkcommand, perl=True)
        case CheckType.ON:
            return NoneSpec()
        case CheckType.OFF:
            return None
        case _:  # pragma: no cover
            assert_never(c.checktype)


def missing_settings(c: CheckInputs) -> str | None:
    """What the service check cannot run without, as a message; None when complete."""
    match c.service:
        case Service.MYSQL | Service.PGSQL | Service.ORACLE if not (c.login and c.request):
            return f"service={c.service} needs login= and request= (the SQL query to run)"
        case Service.DNS if not c.request:
            return "service=dns needs request= (the name to look up)"
        case Service.RADIUS if not c.login:
            return "service=radius needs login= (and usually passwd= and secret=)"
        case _:
            return None
