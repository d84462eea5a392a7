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
    DnsQueryType,
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
from ldirector.config.model import CheckService, CheckType, ServiceProtocol

_ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckInputs:
    """The effective per-virtual settings a spec is built from."""

    service: CheckService
    protocol: ServiceProtocol
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
    #: PEM text of ``httpscafile`` (None: the system's CA store).
    ca_certs: str | None = None
    dnsquerytype: DnsQueryType | None = None
    #: ``dynamicweight``: an external check's exit status may set the real's weight.
    dynamicweight: bool = False


def normalize_request(request: str | None) -> str:
    """ldirectord's request: ``/`` when unset, a leading ``/`` added, absolute URLs kept."""
    if not request:
        return "/"
    if _ABSOLUTE_URL.match(request) or request.startswith("/"):
        return request
    return "/" + request


def bare_request(request: str | None) -> str:
    """The request without ldirectord's leading ``/`` (DNS names, LDAP bases, SQL, simpletcp)."""
    return normalize_request(request)[1:] if not _ABSOLUTE_URL.match(request or "") else ""


def negotiate_spec(c: CheckInputs) -> CheckSpec:
    """The service check of ``checktype=negotiate`` (and of the negotiate rounds of ``N``)."""
    match c.service:
        case CheckService.HTTP | CheckService.HTTPS | CheckService.HTTP_PROXY:
            return HttpSpec(
                tls=c.service is CheckService.HTTPS,
                proxy=c.service is CheckService.HTTP_PROXY,
                request=normalize_request(c.request),
                receive=c.receive,
                method=c.httpmethod,
                virtualhost=c.virtualhost,
                verify_tls=c.httpsverify,
                ca_certs=c.ca_certs if c.httpsverify else None,
            )
        case CheckService.DNS:
            return DnsSpec(
                query=bare_request(c.request),
                receive=c.receive,
                tcp=c.protocol is ServiceProtocol.TCP,
                qtype=c.dnsquerytype,
            )
        case CheckService.SIMPLETCP:
            return SimpleTcpSpec(
                request=bare_request(c.request).replace("\\n", "\n"), receive=c.receive
            )
        case CheckService.SIP:
            # the default login applies whether service= was written or inferred.
            return SipSpec(login=c.login or f"ldirectord@{c.hostname}")
        case CheckService.FTP:
            return FtpSpec(
                login=c.login or "anonymous",
                passwd=c.passwd or f"ldirectord@{c.hostname}",
                request=normalize_request(c.request),
                receive=c.receive,
            )
        case CheckService.SMTP | CheckService.SUBMISSION:
            return SmtpSpec()
        case CheckService.POP | CheckService.POPS:
            return PopSpec(tls=c.service is CheckService.POPS, login=c.login, passwd=c.passwd)
        case CheckService.IMAP | CheckService.IMAPS:
            return ImapSpec(tls=c.service is CheckService.IMAPS, login=c.login, passwd=c.passwd)
        case CheckService.NNTP:
            return NntpSpec()
        case CheckService.LDAP | CheckService.LDAPS:
            return LdapSpec(
                tls=c.service is CheckService.LDAPS,
                base=bare_request(c.request),
                receive=c.receive,
                login=c.login,
                passwd=c.passwd,
            )
        case CheckService.MYSQL:
            return MysqlSpec(login=c.login, passwd=c.passwd, database=c.database, query=_sql(c))
        case CheckService.PGSQL:
            return PgsqlSpec(login=c.login, passwd=c.passwd, database=c.database, query=_sql(c))
        case CheckService.ORACLE:
            return OracleSpec(login=c.login, passwd=c.passwd, database=c.database, query=_sql(c))
        case CheckService.RADIUS:
            return RadiusSpec(login=c.login, passwd=c.passwd, secret=c.secret)
        case CheckService.NONE:
            return NoneSpec()
        case _:  # pragma: no cover
            assert_never(c.service)


def _sql(c: CheckInputs) -> str:
    return (c.request or "").strip()


def connect_spec(c: CheckInputs) -> CheckSpec:
    """A plain connect check; on UDP services ldirectord pings instead."""
    if c.protocol is ServiceProtocol.UDP:
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
            return ExternalSpec(command=c.checkcommand, dynamic=c.dynamicweight)
        case CheckType.EXTERNAL_PERL:
            return ExternalSpec(command=c.checkcommand, perl=True, dynamic=c.dynamicweight)
        case CheckType.ON:
            return NoneSpec()
        case CheckType.OFF:
            return None
        case _:  # pragma: no cover
            assert_never(c.checktype)


def missing_settings(c: CheckInputs) -> str | None:
    """What the service check cannot run without, as a message; None when complete."""
    match c.service:
        case CheckService.MYSQL | CheckService.PGSQL | CheckService.ORACLE if not (
            c.login and c.request
        ):
            return f"service={c.service} needs login= and request= (the SQL query to run)"
        case CheckService.DNS if not c.request:
            return "service=dns needs request= (the name to look up)"
        case CheckService.RADIUS if not c.login:
            return "service=radius needs login= (and usually passwd= and secret=)"
        case _:
            return None
