"""What the parser collects before any default or inheritance is applied (mutable, internal).

``parser`` fills these from the directive lines; ``build`` turns them into the frozen model. A
field left None means "not written", which is what inheritance needs to know.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from checks.types import DnsQueryType, HttpMethod
from ldirector.config.addresses import FallbackLine, RealLine, VirtualAddress
from ldirector.config.errors import Span
from ldirector.config.model import (
    CheckService,
    CheckType,
    DaemonState,
    MailAddress,
    ServiceProtocol,
    SmtpServer,
)
from ldirector.config.syncd import RawSync


@dataclass
class RawCommon:
    """Directives valid both globally and per virtual."""

    checktimeout: float | None = None
    negotiatetimeout: float | None = None
    checkinterval: float | None = None
    checkcount: int | None = None
    failurecount: int | None = None
    rise: int | None = None
    slowstart: float | None = None
    dynamicweight: bool | None = None
    agentport: int | None = None
    agentinterval: float | None = None
    agenttimeout: float | None = None
    quiescent: bool | None = None
    cleanstop: bool | None = None
    fallback: FallbackLine | None = None
    fallback6: FallbackLine | None = None
    fallbackcommand: tuple[str, ...] | None = None
    emailalert: tuple[MailAddress, ...] | None = None
    emailalertfreq: int | None = None
    emailalertstatus: tuple[DaemonState, ...] | None = None
    smtp: SmtpServer | None = None
    httpsverify: bool | None = None
    #: ``httpscafile``: the path as written and the PEM text read from it.
    httpscafile: tuple[str, str] | None = None
    #: Line of the last occurrence of each directive, for diagnostics about effective values.
    spans: dict[str, Span] = field(default_factory=dict)


@dataclass
class RawGlobal(RawCommon):
    """The global section."""

    autoreload: bool | None = None
    callback: str | None = None
    logfile: str | None = None
    execute: list[str] = field(default_factory=list)
    fork: bool | None = None
    supervised: bool | None = None
    readdquiescent: bool | None = None
    emailalertfrom: MailAddress | None = None
    maintenancedir: str | None = None
    resyncinterval: float | None = None
    httpstatus: tuple[str, int] | None = None
    sysctls: dict[str, int] = field(default_factory=dict)
    sync: RawSync = field(default_factory=RawSync)


@dataclass
class RawReal:
    """One ``real=`` line with its family and line."""

    line: RealLine
    span: Span


@dataclass
class RawVirtual(RawCommon):
    """One virtual block; ``address`` is None when the virtual line itself was invalid."""

    family: int = 4
    address: VirtualAddress | None = None
    span: Span = field(default_factory=lambda: Span("<none>"))
    reals: list[RawReal] = field(default_factory=list)
    checktype: CheckType | None = None
    combined_connects: int = 0
    service: CheckService | None = None
    checkport: int | None = None
    request: str | None = None
    receive: str | None = None
    receive_re: re.Pattern[str] | None = None
    httpmethod: HttpMethod | None = None
    virtualhost: str | None = None
    dnsquerytype: DnsQueryType | None = None
    login: str | None = None
    passwd: str | None = None
    database: str | None = None
    secret: str | None = None
    checkcommand: str | None = None
    scheduler: str | None = None
    schedflags: tuple[str, ...] | None = None
    persistent: int | None = None
    netmask: IPv4Address | int | None = None
    protocol: ServiceProtocol | None = None
    ops: bool | None = None
    monitorfile: str | None = None
    servicename: str | None = None
    comment: str | None = None
    load: str | None = None
