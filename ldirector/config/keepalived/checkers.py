"""keepalived's health checkers -> the check directives of an ldirectord.cf virtual block.

keepalived attaches checkers to each real server; ldirectord checks every real of a virtual
the same way (a request and receive may differ per real). So each real's checker becomes a
``Probe``, the directives it needs, and the converter compares the probes of a virtual's reals.

The mapping: HTTP_GET -> service=http, SSL_GET -> service=https (``url``'s ``path`` is the
request, its ``regex`` the receive), TCP_CHECK -> checktype=connect, MISC_CHECK ->
checktype=external, DNS_CHECK -> service=dns with dnsquerytype, SMTP_CHECK -> service=smtp,
PING_CHECK -> checktype=ping. ``delay_loop`` is the checkinterval (keepalived's default 60 s),
``connect_timeout`` the timeout (default 5 s; ``misc_timeout`` for MISC_CHECK, else its delay
loop), and ``retry`` (``nb_get_retry``) more failures before a real is down: failurecount =
retry + 1, with keepalived's default retry of 1 (3 for DNS_CHECK, 0 for MISC_CHECK). A checker
inherits these from its real server, and the real from its virtual server.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from checks.types import DnsQueryType
from ldirector.config.errors import Span
from ldirector.config.keepalived.emit import number, quote
from ldirector.config.keepalived.grammar import Node
from ldirector.config.keepalived.httpget import HttpChecker
from ldirector.config.keepalived.report import (
    Report,
    address,
    hostname,
    name,
    safe,
    shown,
    timer,
    whole,
)
from ldirector.config.values import IPAddress


class Kind(enum.StrEnum):
    """The checkers that have an ldirector equivalent."""

    HTTP = "HTTP_GET"
    HTTPS = "SSL_GET"
    CONNECT = "TCP_CHECK"
    EXTERNAL = "MISC_CHECK"
    DNS = "DNS_CHECK"
    SMTP = "SMTP_CHECK"
    PING = "PING_CHECK"


_KINDS = frozenset(Kind)
#: Checkers ldirector has no equivalent for, and why.
UNSUPPORTED = {
    "UDP_CHECK": "ldirector has no UDP payload check",
    "BFD_CHECK": "ldirector does not speak BFD",
    "FILE_CHECK": "ldirector has no file checker",
}
#: keepalived's default ``retry`` when none is given at any level.
_RETRY = {Kind.DNS: 3, Kind.EXTERNAL: 0}
#: What ldirector's checktype and service are for each kind.
_DIRECTIVES = {
    Kind.HTTP: (("checktype", "negotiate"), ("service", "http")),
    Kind.HTTPS: (("checktype", "negotiate"), ("service", "https")),
    Kind.CONNECT: (("checktype", "connect"),),
    Kind.EXTERNAL: (("checktype", "external"),),
    Kind.DNS: (("checktype", "negotiate"), ("service", "dns")),
    Kind.SMTP: (("checktype", "negotiate"), ("service", "smtp")),
    Kind.PING: (("checktype", "ping"),),
}
_NEGOTIATE = frozenset({Kind.HTTP, Kind.HTTPS, Kind.DNS, Kind.SMTP})
#: Generic checker options ldirector has no equivalent for.
_GENERIC_DROPPED = {
    "bindto": "ldirector checks from the director's own address",
    "bind_if": "ldirector checks from the director's own address",
    "bind_port": "ldirector checks from any source port",
    "fwmark": "ldirector does not mark check packets",
    "warmup": "ldirector spreads the first checks itself",
    "delay_before_retry": "ldirector retries at checkinterval",
    "log_all_failures": "ldirector logs every change of state",
}
#: Settings whose meaning is ldirector's own behaviour: a real is added only once a check has
#: passed (keepalived's ``alpha``).
ALREADY = frozenset({"alpha"})


@dataclass(frozen=True, slots=True)
class Inherited:
    """What a virtual server passes down to its reals, and a real to its checkers."""

    delay_loop: float | None = None
    connect_timeout: float | None = None
    retry: int | None = None
    virtualhost: str | None = None

    def below(self, node: Node, report: Report) -> Inherited:
        """These values as overridden by the statements of ``node``'s block."""
        found = self
        for child in node.children or ():
            found = found.set(child, report)
        return found

    def set(self, child: Node, report: Report) -> Inherited:
        word = child.args[0] if child.args else ""
        match child.keyword:
            case "delay_loop" | "connect_timeout":
                value = timer(word)
                if value is None:
                    report.drop(child.span, f"{child.keyword} {shown(word)}: not seconds")
                    return self
                if child.keyword == "delay_loop":
                    return replace(self, delay_loop=value)
                return replace(self, connect_timeout=value)
            case "retry" | "nb_get_retry":
                count = whole(word, 0, 1_000_000)
                if count is None:
                    report.drop(child.span, f"{child.keyword} {shown(word)}: not a count")
                    return self
                return replace(self, retry=count)
            case "virtualhost":
                if not hostname(word):
                    report.drop(child.span, f"virtualhost {shown(word)}: not a host name")
                    return self
                return replace(self, virtualhost=word)
        return self


INHERITED = frozenset({"delay_loop", "connect_timeout", "retry", "nb_get_retry", "virtualhost"})


@dataclass(frozen=True, slots=True)
class Probe:
    """A real's check as ldirectord.cf directives: ``settings`` must agree between the reals of
    a virtual; ``request`` and ``receive`` (HTTP) may differ, as per-real overrides."""

    kind: Kind | None  # None: no checker, the real is always up
    settings: tuple[tuple[str, str], ...]
    request: str | None = None
    receive: str | None = None
    span: Span = field(default=Span(""), compare=False)


@dataclass(frozen=True, slots=True)
class RealTarget:
    """The real server a checker probes: ``port`` is the one of its ``real=`` line, and
    ``check_port`` the one keepalived checks when no connect_port says otherwise (they differ
    for a firewall-mark service, whose reals keepalived gives no port)."""

    address: IPAddress
    port: int | None
    udp: bool
    check_port: int | None = None


UNCHECKED = Probe(None, (("checktype", "on"),))


def probe(real: Node, target: RealTarget, inherited: Inherited, report: Report) -> Probe:
    """The check of one real server: its first convertible checker (others are reported)."""
    found: Probe | None = None
    for child in real.children or ():
        if child.keyword in UNSUPPORTED:
            report.drop(child.span, f"{child.keyword}: not converted: {UNSUPPORTED[child.keyword]}")
        elif child.keyword in _KINDS:
            converted = _checker(child, Kind(child.keyword), target, inherited, report)
            if found is None:
                found = converted
            else:
                report.drop(
                    child.span,
                    f"{child.keyword}: a second checker on this real is not converted "
                    "(ldirector runs one check per real)",
                )
    return found or replace(UNCHECKED, span=real.span)


def _checker(
    node: Node, kind: Kind, target: RealTarget, inherited: Inherited, report: Report
) -> Probe:
    here = inherited.below(node, report)
    port: int | None = None
    http = HttpChecker(kind is Kind.HTTPS) if kind in (Kind.HTTP, Kind.HTTPS) else None
    extra: list[tuple[str, str]] = []
    misc_timeout: float | None = None
    for child in node.children or ():
        word = child.args[0] if child.args else ""
        key = child.keyword
        if key in INHERITED or key in ALREADY:
            continue
        if key == "connect_port":
            port = _port(child, report, port)
        elif key == "connect_ip":
            _connect_ip(child, target, report)
        elif key in _GENERIC_DROPPED:
            report.drop(child.span, f"{key}: not converted: {_GENERIC_DROPPED[key]}")
        elif http is not None and http.take(child, report):
            pass
        elif kind is Kind.DNS and key in ("type", "name"):
            extra.append(_dns(child, report))
        elif kind is Kind.EXTERNAL and key == "misc_path":
            command = _misc_path(child, report)
            if command is not None:
                extra.append(("checkcommand", quote(command)))
        elif kind is Kind.EXTERNAL and key == "misc_timeout":
            misc_timeout = timer(word)
            if misc_timeout is None:
                report.drop(child.span, f"misc_timeout {shown(word)}: not a number of seconds")
        elif kind is Kind.EXTERNAL and key in ("misc_dynamic", "user"):
            why = (
                "ldirector does not take weights from a check's exit status"
                if key == "misc_dynamic"
                else "ldirector runs checks as its own user"
            )
            report.drop(child.span, f"{key}: not converted: {why}")
        elif kind is Kind.SMTP and key == "helo_name":
            report.drop(child.span, "helo_name: not converted: ldirector greets with its host name")
        elif kind is Kind.SMTP and key == "host":
            port = _smtp_host(child, target, report, port)
        else:
            report.drop(child.span, f"{name(key)}: not a {kind} setting ldirector knows: ignored")
    if kind is Kind.CONNECT and target.udp:
        report.drop(
            node.span,
            "TCP_CHECK on a UDP service: ldirector's connect check of a UDP service is a ping",
        )
    if kind is Kind.EXTERNAL and not any(k == "checkcommand" for k, _ in extra):
        report.drop(node.span, "MISC_CHECK without misc_path: ldirector runs /bin/true")
    if kind is Kind.DNS:
        extra = _dns_defaults(extra)
        if not target.udp:
            report.drop(
                node.span,
                "DNS_CHECK asks over UDP; ldirector asks a TCP service's reals over TCP",
            )
    if http is not None and http.urls == 0:
        report.drop(node.span, f"{kind} without url: ldirector fetches /")
    interval = here.delay_loop or 60.0
    settings = list(_DIRECTIVES[kind]) + extra
    virtualhost = (http.virtualhost or here.virtualhost) if http is not None else None
    if virtualhost is not None:
        settings.append(("virtualhost", virtualhost))
    port = port if port is not None else target.check_port
    if port is not None and port != target.port:
        settings.append(("checkport", str(port)))
    settings.append(("checkinterval", number(interval)))
    if kind in _NEGOTIATE:
        settings.append(("negotiatetimeout", number(here.connect_timeout or 5.0)))
    elif kind is Kind.EXTERNAL:
        settings.append(("checktimeout", number(misc_timeout or interval)))
    else:
        settings.append(("checktimeout", number(here.connect_timeout or 5.0)))
    retry = here.retry if here.retry is not None else _RETRY.get(kind, 1)
    settings.append(("failurecount", str(retry + 1)))
    request = receive = None
    if http is not None:
        request, receive = http.request(), http.receive
    return Probe(kind, tuple(settings), request, receive, node.span)


def _port(child: Node, report: Report, current: int | None) -> int | None:
    word = child.args[0] if child.args else ""
    found = whole(word, 1, 65535)
    if found is None:
        report.drop(child.span, f"connect_port {shown(word)}: not a port")
        return current
    return found


def _connect_ip(child: Node, target: RealTarget, report: Report) -> None:
    word = child.args[0] if child.args else ""
    if address(word) != target.address:
        report.drop(
            child.span,
            f"connect_ip {shown(word)}: not converted: ldirector checks the real's own address",
        )


def _smtp_host(child: Node, target: RealTarget, report: Report, port: int | None) -> int | None:
    if port is not None:
        report.drop(child.span, "host: only one SMTP host is converted: ldirector checks the real")
        return port
    for option in child.children or ():
        if option.keyword == "connect_port":
            port = _port(option, report, port)
        elif option.keyword == "connect_ip":
            _connect_ip(option, target, report)
        else:
            report.drop(option.span, f"{option.keyword}: not converted in an SMTP_CHECK host")
    return port


def _dns(child: Node, report: Report) -> tuple[str, str]:
    word = child.args[0] if child.args else ""
    if child.keyword == "type":
        try:
            return "dnsquerytype", DnsQueryType(word.upper())
        except ValueError:
            report.drop(child.span, f"type {shown(word)}: not a DNS record type; SOA is asked")
            return "dnsquerytype", DnsQueryType.SOA
    if word != "." and not hostname(word.rstrip(".")):
        report.drop(child.span, f"name {shown(word)}: not a DNS name; '.' is asked")
        word = "."
    return "request", quote(word)


def _dns_defaults(extra: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """keepalived's DNS_CHECK asks for the SOA of ``.`` unless told otherwise."""
    given = dict(extra)
    return [
        ("dnsquerytype", given.get("dnsquerytype", DnsQueryType.SOA)),
        ("request", given.get("request", quote("."))),
    ]


def _misc_path(child: Node, report: Report) -> str | None:
    words = " ".join(child.args).split()
    if not words or not safe(words[0]):
        report.drop(child.span, "misc_path: no program to run; not converted")
        return None
    if len(words) > 1:
        report.drop(
            child.span,
            f"misc_path arguments {shown(' '.join(words[1:]))}: not converted: ldirector runs "
            "checkcommand with VIP VPORT RIP RPORT as its arguments",
        )
    return words[0]
