"""The contract between ldirector and its health checks: where to probe, how, and what came back.

ldirector's config layer builds a ``Target`` and one ``CheckSpec`` per real server; the scheduler
hands them to :func:`checks.run`. This package never imports ``ldirector``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

IPAddress = IPv4Address | IPv6Address


class Transport(enum.StrEnum):
    """The transport a check uses, taken from the virtual service's protocol (fwm means tcp)."""

    TCP = "tcp"
    UDP = "udp"


class HttpMethod(enum.StrEnum):
    """The request methods ldirectord's ``httpmethod`` accepts."""

    GET = "GET"
    HEAD = "HEAD"


class DnsQueryType(enum.StrEnum):
    """The record types a DNS check may ask for (``dnsquerytype``)."""

    A = "A"
    AAAA = "AAAA"
    CNAME = "CNAME"
    MX = "MX"
    NS = "NS"
    PTR = "PTR"
    SOA = "SOA"
    SRV = "SRV"
    TXT = "TXT"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One real server as a check sees it.

    ``port`` is the port to probe, with ldirectord's precedence already applied (``checkport``,
    else the real's port, else the service's default port). The ``virtual*`` and ``real_port``
    fields exist for external checks, which receive ``VIP VPORT RIP RPORT`` as arguments.
    """

    address: IPAddress
    port: int
    transport: Transport = Transport.TCP
    #: VIP as ldirectord passes it to external checks: dotted quad, bracketed IPv6, or the mark.
    virtual: str = ""
    virtual_port: int = 0
    #: The real's configured port (0 for firewall-mark reals given without one).
    real_port: int = 0
    # Targets key caches looked up at every check; an address hashes by formatting itself.
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fields = (self.address, self.port, self.transport, self.virtual, self.virtual_port)
        object.__setattr__(self, "_hash", hash((*fields, self.real_port)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        if isinstance(self.address, IPv6Address):
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class Weight:
    """The weight a real server asks for: absolute, or a percentage of its configured weight.

    ldirector bounds it by the configured weight, so a real can lower its share, never raise it.
    """

    value: int
    percent: bool = False


@dataclass(frozen=True, slots=True)
class Result:
    """What one check run concluded.

    ``reason`` is one line a person can act on ("HTTP 503", "connection refused",
    "receive 'Test Page' not found"); on success it says what was seen ("HTTP 200 OK").
    ``elapsed`` is seconds, filled in by the harness that timed the check; :func:`checks.run`
    leaves it 0.
    """

    ok: bool
    reason: str
    elapsed: float = 0.0
    #: The weight the real asked for (dynamic weights); None: its configured weight. On a
    #: failed result it marks the real's own word that it is out (an agent's ``down``), as
    #: opposed to a probe that failed.
    weight: Weight | None = None


# --- per-service specs -------------------------------------------------------------------------
# Every spec is frozen and hashable: two reals with equal (Target, spec) pairs share one probe.
# Secrets are kept out of repr() so that no log line ever shows them.


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectSpec:
    """checktype=connect on a TCP service: a TCP handshake, then close."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PingSpec:
    """checktype=ping (and connect on UDP services): ICMP echo, up on the first reply."""

    count: int = 1
    #: Seconds to wait for each reply; the caller's overall timeout is count x this.
    attempt_timeout: float = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalSpec:
    """checktype=external / external-perl: ``command VIP VPORT RIP RPORT``, exit 0 means up.

    With ``dynamic`` the exit status follows keepalived's ``misc_dynamic`` convention: 0 up at
    the configured weight, 1 down, 2 to 255 up at weight status - 2.
    """

    command: str
    perl: bool = False
    dynamic: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSpec:
    """An agent check (HAProxy's ``agent-check`` style): read the line the real's agent sends.

    ``send`` is written first when given (some agents wait for a request line).
    """

    send: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NoneSpec:
    """service=none: nothing is probed; the real is always up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSpec:
    """service=http, https and http_proxy.

    ``request`` is a path with a leading ``/`` or an absolute ``http(s)://`` URL (per-real
    overrides may give one). With ``proxy`` the real server is used as an HTTP proxy for
    ``request``, which is then an absolute URL.
    """

    tls: bool = False
    proxy: bool = False
    request: str = "/"
    receive: re.Pattern[str] | None = None
    method: HttpMethod = HttpMethod.GET
    #: The Host header and, over TLS, the server name sent (SNI) and, with ``verify_tls``,
    #: the name the certificate must carry.
    virtualhost: str | None = None
    #: Verify the real server's certificate chain (off by default: reals are addressed by IP
    #: and often self-signed); its name too when ``virtualhost`` gives one.
    verify_tls: bool = False
    #: PEM text of the CA certificates trusted instead of the system's, when verifying.
    ca_certs: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsSpec:
    """service=dns: a query for ``query`` of type ``qtype``.

    With ``qtype`` None the type is ldirectord's: A for a name, PTR when ``query`` is an IP
    address.
    """

    query: str
    receive: re.Pattern[str] | None = None
    #: Query over TCP (the virtual service is TCP) instead of UDP.
    tcp: bool = False
    qtype: DnsQueryType | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SimpleTcpSpec:
    """service=simpletcp: send ``request`` as is, match a line of the reply against receive.

    ``request`` is the bytes to send: the config layer drops ldirectord's leading ``/`` and turns
    the two characters ``\\n`` into newlines.
    """

    request: str
    receive: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SipSpec:
    """service=sip: an OPTIONS request for ``sip:<login>``, up on ``SIP/2.0 200 OK``."""

    login: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FtpSpec:
    """service=ftp: log in, passive-mode RETR ``request``, match its content against receive."""

    login: str = "anonymous"
    passwd: str = field(default="", repr=False)
    request: str = "/"
    receive: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSpec:
    """service=smtp and submission: greeting, EHLO (HELO fallback), QUIT."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxSpec:
    """Common shape of the mailbox checks: TLS from the first byte, and an optional login."""

    tls: bool = False
    login: str = ""
    passwd: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PopSpec(MailboxSpec):
    """service=pop and pops (``tls``): greeting, and a login when one is configured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapSpec(MailboxSpec):
    """service=imap and imaps (``tls``): greeting, and LOGIN when a login is configured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NntpSpec:
    """service=nntp: the server greeting must start with ``2``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LdapSpec:
    """service=ldap and ldaps: bind, then a base-scope search of ``base`` returning one entry."""

    tls: bool = False
    base: str = ""
    receive: re.Pattern[str] | None = None
    login: str = ""
    passwd: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SqlSpec:
    """Common shape of the SQL checks: log in, run ``query``, up when it returns rows."""

    login: str
    passwd: str = field(default="", repr=False)
    database: str = ""
    query: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MysqlSpec(SqlSpec):
    """service=mysql."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PgsqlSpec(SqlSpec):
    """service=pgsql."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OracleSpec(SqlSpec):
    """service=oracle (``database`` is the SID or service name)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RadiusSpec:
    """service=radius: Access-Request for login/passwd, up on Access-Accept only."""

    login: str
    passwd: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)


CheckSpec = (
    ConnectSpec
    | PingSpec
    | ExternalSpec
    | AgentSpec
    | NoneSpec
    | HttpSpec
    | DnsSpec
    | SimpleTcpSpec
    | SipSpec
    | FtpSpec
    | SmtpSpec
    | PopSpec
    | ImapSpec
    | NntpSpec
    | LdapSpec
    | MysqlSpec
    | PgsqlSpec
    | OracleSpec
    | RadiusSpec
)
