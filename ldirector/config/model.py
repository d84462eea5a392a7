"""The frozen configuration model: what ``load`` returns and everything downstream reads.

Every value here is the *effective* one (defaults, global inheritance and ldirectord's timeout
precedence already applied), so no other module derives them again. Each node carries its source
``span``, which takes no part in equality: adding a comment line does not change a model.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from types import MappingProxyType
from typing import TYPE_CHECKING

from checks.types import (
    CheckSpec,
    DnsQueryType,
    DnsSpec,
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
    PopSpec,
    RadiusSpec,
    SimpleTcpSpec,
    SipSpec,
    SmtpSpec,
    Target,
)
from ldirector.config.errors import Diagnostic, Span
from ldirector.ipvs.sync import SyncDaemon
from ldirector.ipvs.types import Forward

if TYPE_CHECKING:
    # The email package is a score of modules: it is loaded when an address is first shown or
    # mailed, not by every config load (and every start) that names no email address.
    from email.headerregistry import Address

IPAddress = IPv4Address | IPv6Address

_NOWHERE = Span("<none>", 0)

#: The port of ``smtp=`` when none is written.
SMTP_PORT = 25


class ServiceProtocol(enum.StrEnum):
    """The IPVS service type of a virtual: ``-t``, ``-u`` or ``-f``."""

    TCP = "tcp"
    UDP = "udp"
    FWM = "fwm"


class CheckType(enum.StrEnum):
    """``checktype=``; a bare number N becomes COMBINED with ``Virtual.combined_connects`` = N."""

    CONNECT = "connect"
    NEGOTIATE = "negotiate"
    PING = "ping"
    EXTERNAL = "external"
    EXTERNAL_PERL = "external-perl"
    ON = "on"
    OFF = "off"
    COMBINED = "combined"


class CheckService(enum.StrEnum):
    """``service=``: the 21 words ldirectord knows."""

    DNS = "dns"
    FTP = "ftp"
    HTTP = "http"
    HTTPS = "https"
    HTTP_PROXY = "http_proxy"
    IMAP = "imap"
    IMAPS = "imaps"
    LDAP = "ldap"
    LDAPS = "ldaps"
    MYSQL = "mysql"
    NNTP = "nntp"
    NONE = "none"
    ORACLE = "oracle"
    PGSQL = "pgsql"
    POP = "pop"
    POPS = "pops"
    RADIUS = "radius"
    SIMPLETCP = "simpletcp"
    SIP = "sip"
    SMTP = "smtp"
    SUBMISSION = "submission"


class DaemonState(enum.StrEnum):
    """Daemon states ``emailalertstatus`` selects (``all`` is every one, ``none`` is none)."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    RELOADING = "reloading"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceInfo:
    """What ldirector knows about one ``service=`` word."""

    #: Port probed when the real has port 0 and there is no checkport; None when there is none.
    default_port: int | None
    spec_type: type[CheckSpec]
    #: Python module the check needs, and the pip extra that installs it.
    module: str | None = None
    extra: str | None = None


SERVICES: Mapping[CheckService, ServiceInfo] = MappingProxyType(
    {
        CheckService.DNS: ServiceInfo(default_port=53, spec_type=DnsSpec),
        CheckService.FTP: ServiceInfo(default_port=21, spec_type=FtpSpec),
        CheckService.HTTP: ServiceInfo(default_port=80, spec_type=HttpSpec),
        CheckService.HTTPS: ServiceInfo(default_port=443, spec_type=HttpSpec),
        CheckService.HTTP_PROXY: ServiceInfo(default_port=3128, spec_type=HttpSpec),
        CheckService.IMAP: ServiceInfo(default_port=143, spec_type=ImapSpec),
        CheckService.IMAPS: ServiceInfo(default_port=993, spec_type=ImapSpec),
        CheckService.LDAP: ServiceInfo(default_port=389, spec_type=LdapSpec),
        CheckService.LDAPS: ServiceInfo(default_port=636, spec_type=LdapSpec),
        CheckService.MYSQL: ServiceInfo(
            default_port=3306, spec_type=MysqlSpec, module="aiomysql", extra="mysql"
        ),
        CheckService.NNTP: ServiceInfo(default_port=119, spec_type=NntpSpec),
        CheckService.NONE: ServiceInfo(default_port=None, spec_type=NoneSpec),
        CheckService.ORACLE: ServiceInfo(
            default_port=1521, spec_type=OracleSpec, module="oracledb", extra="oracle"
        ),
        CheckService.PGSQL: ServiceInfo(
            default_port=5432, spec_type=PgsqlSpec, module="asyncpg", extra="pgsql"
        ),
        CheckService.POP: ServiceInfo(default_port=110, spec_type=PopSpec),
        CheckService.POPS: ServiceInfo(default_port=995, spec_type=PopSpec),
        CheckService.RADIUS: ServiceInfo(
            default_port=1812, spec_type=RadiusSpec, module="pyrad", extra="radius"
        ),
        CheckService.SIMPLETCP: ServiceInfo(default_port=None, spec_type=SimpleTcpSpec),
        CheckService.SIP: ServiceInfo(default_port=5060, spec_type=SipSpec),
        CheckService.SMTP: ServiceInfo(default_port=25, spec_type=SmtpSpec),
        CheckService.SUBMISSION: ServiceInfo(default_port=587, spec_type=SmtpSpec),
    }
)
"""service= word -> default port, spec type and optional driver: the one table of services."""

#: ldirectord picks the service from the *virtual* port when service= is absent.
SERVICE_BY_PORT: Mapping[int, CheckService] = MappingProxyType(
    {
        info.default_port: svc
        for svc, info in SERVICES.items()
        if info.default_port is not None and svc is not CheckService.SIMPLETCP
    }
)


@dataclass(frozen=True, slots=True)
class SmtpServer:
    """``smtp=``: where alert emails go. ``host`` is a name or an IP literal (IPv6 unbracketed)."""

    host: str
    port: int = SMTP_PORT

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class MailAddress:
    """One address of ``emailalert`` or ``emailalertfrom``, valid for both headers and SMTP.

    ``domain`` is empty for a local mailbox (``emailalert = root``), which sendmail and most
    SMTP servers deliver on the director itself.
    """

    username: str
    domain: str = ""
    display_name: str = ""

    @property
    def addr_spec(self) -> str:
        """The bare address for the SMTP envelope (``MAIL FROM``, ``RCPT TO``, sendmail's argv)."""
        return self.header.addr_spec

    @property
    def header(self) -> Address:
        """The address as ``email`` takes it for a From or To header (it quotes as needed)."""
        from email.headerregistry import Address

        return Address(self.display_name, self.username, self.domain)

    def __str__(self) -> str:
        return str(self.header)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fallback:
    """The server IPVS gets when no real of a virtual is up (weight 1, no thresholds)."""

    address: IPAddress
    port: int
    forward: Forward = Forward.GATE
    span: Span = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Real:
    """One real server of one virtual (a ``a->b`` range yields one Real per address)."""

    address: IPAddress
    #: The configured port; 0 when none was given (firewall-mark services).
    port: int
    forward: Forward
    weight: int = 1
    #: Connection thresholds (ipvsadm -y / -x); 0 means unset.
    lower: int = 0
    upper: int = 0
    #: Per-real overrides as written (None when the real has none); already folded into the specs.
    request: str | None = None
    receive: str | None = None
    #: Where and how checks probe this real: checkport applied, transport from the virtual.
    target: Target
    #: The service check (``checktype=negotiate`` and the negotiate rounds of a combined check).
    negotiate: CheckSpec
    #: The plain connect check: ConnectSpec, or PingSpec on UDP virtuals (as ldirectord does).
    connect: CheckSpec
    #: The check the virtual's checktype runs (for COMBINED, the negotiate one); None for ``off``.
    check: CheckSpec | None
    span: Span = field(default=_NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Virtual:
    """One virtual service with every effective setting."""

    protocol: ServiceProtocol
    family: int  # 4 or 6
    address: IPAddress | None  # None for firewall marks
    port: int  # 0 for firewall marks
    fwmark: int | None = None
    scheduler: str = "wrr"
    schedflags: tuple[str, ...] = ()
    persistent: int | None = None
    netmask: IPv4Address | int | None = None
    ops: bool = False
    reals: tuple[Real, ...] = ()
    fallback: Fallback | None = None
    checktype: CheckType = CheckType.NEGOTIATE
    #: N for ``checktype=N``: connect checks between two negotiate checks; 0 otherwise.
    combined_connects: int = 0
    service: CheckService = CheckService.NONE
    checkcommand: str = "/bin/true"
    checkport: int | None = None
    checktimeout: float = 5.0
    negotiatetimeout: float = 30.0
    checkinterval: float = 10.0
    checkcount: int = 1
    failurecount: int = 1
    #: Consecutive successes a down real needs before it is up again.
    rise: int = 1
    #: Seconds a real's weight ramps from 1 to its configured weight once up; 0: off.
    slowstart: float = 0.0
    #: An external check's exit status 2..255 sets the weight (keepalived's misc_dynamic).
    dynamicweight: bool = False
    #: TCP port of the reals' load agents (HAProxy agent-check style); None: no agent.
    agentport: int | None = None
    agentinterval: float = 10.0
    agenttimeout: float = 5.0
    quiescent: bool = False
    cleanstop: bool = True
    request: str = "/"
    receive: str = ""
    httpmethod: HttpMethod = HttpMethod.GET
    virtualhost: str | None = None
    login: str = ""
    passwd: str = field(default="", repr=False)
    database: str = ""
    secret: str = field(default="", repr=False)
    httpsverify: bool = False
    #: ``httpscafile`` as written: the CA file httpsverify trusts; None = the system's store.
    httpscafile: str | None = None
    #: ``dnsquerytype``; None = ldirectord's A, or PTR for an address.
    dnsquerytype: DnsQueryType | None = None
    #: The command's words, split once here as a shell would (ldirectord runs it through one);
    #: the action and ``VIP:PORT protocol`` are appended at run time. Empty: none.
    fallbackcommand: tuple[str, ...] = ()
    emailalert: tuple[MailAddress, ...] = ()
    emailalertfreq: int = 0
    emailalertstatus: tuple[DaemonState, ...] = tuple(DaemonState)
    #: None: the local sendmail (ldirectord's Mail::Send), else SMTP to this server.
    smtp: SmtpServer | None = None
    monitorfile: str | None = None
    servicename: str | None = None
    comment: str | None = None
    load: str | None = None
    span: Span = field(default=_NOWHERE, compare=False, repr=False)

    @property
    def vid(self) -> str:
        """ldirectord's id: ``tcp:1.2.3.4:80``, ``fwm:100``, ``fwm6:2``, ``udp:[::1]:53``."""
        if self.fwmark is not None:
            return f"fwm{'6' if self.family == 6 else ''}:{self.fwmark}"
        return f"{self.protocol}:{self.endpoint}"

    @property
    def endpoint(self) -> str:
        """``ip:port`` with a bracketed IPv6 address, or the mark number for a firewall mark."""
        if self.fwmark is not None:
            return str(self.fwmark)
        if isinstance(self.address, IPv6Address):
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A whole ldirectord.cf: its virtuals and the global-only settings."""

    path: str
    virtuals: tuple[Virtual, ...] = ()
    #: Global defaults, already folded into every Virtual; kept for display and reload diffs.
    checkinterval: float = 10.0
    autoreload: bool = False
    callback: str | None = None
    logfile: str = "/var/log/ldirectord.log"
    execute: tuple[str, ...] = ()
    fork: bool = False
    supervised: bool = False
    readdquiescent: bool = False
    #: None: ``<user>@<hostname>`` of the daemon, decided when the mail is sent.
    emailalertfrom: MailAddress | None = None
    maintenancedir: str | None = None
    #: ldirector extension: seconds between two full comparisons of the kernel table with the
    #: desired one, so a manual ``ipvsadm`` edit to an owned service lasts at most this long.
    resyncinterval: float = 10.0
    #: ldirector extension: (address, port) of the HTTP status endpoint; None = off.
    httpstatus: tuple[str, int] | None = None
    #: Kernel toggles under /proc/sys/net/ipv4/vs to set, sorted by name; absent = leave alone.
    ipvs_sysctls: tuple[tuple[str, int], ...] = ()
    #: ldirector extension: the connection-sync daemons to run, master first; () = leave alone.
    syncdaemons: tuple[SyncDaemon, ...] = ()
    warnings: tuple[Diagnostic, ...] = field(default=(), compare=False, repr=False)
    span: Span = field(default=_NOWHERE, compare=False, repr=False)

    @property
    def sysctls(self) -> Mapping[str, int]:
        """``ipvs_sysctls`` as a read-only mapping."""
        return MappingProxyType(dict(self.ipvs_sysctls))

    @property
    def logs_to_syslog(self) -> bool:
        """ldirectord's rule: a logfile not starting with ``/`` names a syslog facility."""
        return not self.logfile.startswith("/")

    @property
    def syslog_facility(self) -> str | None:
        """The syslog facility ``logfile`` names (already validated), or None for a file."""
        return self.logfile if self.logs_to_syslog else None
