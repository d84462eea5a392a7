"""Third stage of the config layer: raw settings -> the frozen model with every effective value.

Pure. Defaults, global inheritance, the timeout precedence of ldirectord, ports,
services, fallbacks and check specs are all decided here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from ipaddress import IPv6Address
from typing import TypeVar

from checks.types import DnsQueryType, HttpMethod, Target, Transport
from ldirector.config.addresses import FallbackLine
from ldirector.config.converters import compile_receive
from ldirector.config.errors import Diagnostic, Severity, Span, internal_error
from ldirector.config.model import (
    SERVICE_BY_PORT,
    SERVICES,
    CheckService,
    CheckType,
    Config,
    DaemonState,
    Fallback,
    Real,
    ServiceProtocol,
    Virtual,
)
from ldirector.config.names import port
from ldirector.config.parser import Parsed
from ldirector.config.raw import RawGlobal, RawVirtual
from ldirector.config.specs import (
    CheckInputs,
    bare_request,
    connect_spec,
    missing_settings,
    negotiate_spec,
    primary_spec,
)
from ldirector.config.values import Invalid, literal

_USES_NEGOTIATE = (CheckType.NEGOTIATE, CheckType.COMBINED)
_T = TypeVar("_T")


@dataclass
class _Builder:
    path: str
    parsed: Parsed
    hostname: str
    driver_available: Callable[[str], bool]
    diags: list[Diagnostic] = field(default_factory=list)

    def error(self, span: Span, message: str) -> None:
        self.diags.append(Diagnostic(Severity.ERROR, span, message))

    def warn(self, span: Span, message: str) -> None:
        self.diags.append(Diagnostic(Severity.WARNING, span, message))

    def build(self) -> Config:
        g = self.parsed.globals
        seen: dict[tuple[object, ...], Span] = {}
        virtuals: list[Virtual] = []
        for raw in self.parsed.virtuals:
            if raw.address is None:
                continue  # the virtual line itself was reported
            try:
                virtual = self.virtual(raw, g)
            except Invalid as exc:
                self.error(raw.span, str(exc))
                continue
            except Exception as exc:  # a bug: still one diagnostic at its line, never a traceback
                self.error(
                    raw.span, internal_error("virtual6" if raw.family == 6 else "virtual", exc)
                )
                continue
            key = (virtual.protocol, virtual.family, virtual.address, virtual.port, virtual.fwmark)
            if key in seen:
                self.error(
                    raw.span,
                    f"duplicate virtual server {virtual.vid} "
                    f"(first defined at line {seen[key].line})",
                )
                continue
            seen[key] = raw.span
            virtuals.append(virtual)
        return Config(
            path=self.path,
            virtuals=tuple(virtuals),
            checkinterval=g.checkinterval or 10.0,
            autoreload=bool(g.autoreload),
            callback=g.callback,
            logfile=g.logfile or "/var/log/ldirectord.log",
            execute=tuple(g.execute),
            fork=bool(g.fork),
            supervised=bool(g.supervised),
            readdquiescent=bool(g.readdquiescent),
            emailalertfrom=g.emailalertfrom,
            maintenancedir=g.maintenancedir,
            resyncinterval=g.resyncinterval or 10.0,
            httpstatus=g.httpstatus,
            ipvs_sysctls=tuple(sorted(g.sysctls.items())),
            span=Span(self.path),
        )

    def virtual(self, v: RawVirtual, g: RawGlobal) -> Virtual:
        assert v.address is not None  # noqa: S101 - checked by the caller
        fwmark = v.address.fwmark
        protocol = self.protocol(v)
        vport = 0
        if fwmark is None:
            proto = "tcp" if protocol is ServiceProtocol.FWM else str(protocol)
            vport = port(v.address.port_word, proto, "virtual service")
            if v.protocol is None and vport == 53:
                protocol = (
                    ServiceProtocol.UDP
                )  # ldirectord: DNS virtuals are UDP unless told otherwise
        service = v.service or (
            SERVICE_BY_PORT.get(vport, CheckService.NONE) if fwmark is None else CheckService.NONE
        )
        checktype = v.checktype or CheckType.NEGOTIATE
        # Reference 2.7: each timeout falls back on the other one before the global defaults.
        checktimeout = (
            v.checktimeout or v.negotiatetimeout or g.checktimeout or g.negotiatetimeout or 5.0
        )
        negotiatetimeout = (
            v.negotiatetimeout or v.checktimeout or g.negotiatetimeout or g.checktimeout or 30.0
        )
        # ldirectord honours a block's checkinterval only with fork=yes; every probe here has its
        # own cadence, so a per-virtual value always counts.
        checkinterval = v.checkinterval or g.checkinterval or 10.0
        checkcount = v.checkcount or g.checkcount or 1
        ops = bool(v.ops)
        if ops and protocol is not ServiceProtocol.UDP:
            self.warn(
                v.spans.get("ops", v.span), "ops only applies to UDP virtual services; ignored"
            )
            ops = False
        netmask = v.netmask
        if netmask is not None and v.persistent is None:
            self.warn(
                v.spans.get("netmask", v.span), "netmask has no effect without persistent; ignored"
            )
            netmask = None
        quiescent = _first(v.quiescent, g.quiescent, False)
        if quiescent and v.persistent and g.sysctls.get("expire_quiescent_template") != 1:
            self.warn(
                v.span,
                "quiescent=yes with persistent: clients holding a persistence "
                "template keep reaching a quiesced real until the template expires; "
                "set expire_quiescent_template = yes",
            )
        if v.httpmethod is HttpMethod.HEAD and v.receive:
            self.warn(
                v.spans.get("receive", v.span),
                "httpmethod=HEAD gets no body, so receive never matches",
            )
        httpsverify = _first(v.httpsverify, g.httpsverify, False)
        cafile = _first(v.httpscafile, g.httpscafile, None)
        if cafile is not None and not httpsverify:
            where = v.spans.get("httpscafile") or g.spans.get("httpscafile", v.span)
            self.warn(where, "httpscafile has no effect without httpsverify = yes; ignored")
            cafile = None
        self.check_dnsquerytype(v, service)

        if checktype in _USES_NEGOTIATE:
            info = SERVICES[service]
            if info.module is not None and not self.driver_available(info.module):
                self.error(
                    v.spans.get("service", v.span),
                    f"service={service} needs the optional driver {info.module}: "
                    f"pip install 'ldirector[{info.extra}]'",
                )
            if v.service is None and service is CheckService.NONE and v.reals:
                # ldirectord's quiet trap: an unknown port means service=none, never checked.
                what = "a firewall mark" if fwmark is not None else f"port {vport}"
                self.warn(
                    v.span,
                    f"no service= and {what} has no default service, so service=none: the reals "
                    "are never checked (set service=, or checktype=connect)",
                )

        inputs = CheckInputs(
            service=service,
            protocol=protocol,
            checktype=checktype,
            request=v.request,
            receive=v.receive_re,
            httpmethod=v.httpmethod or HttpMethod.GET,
            virtualhost=v.virtualhost,
            login=v.login or "",
            passwd=v.passwd or "",
            database=v.database or "",
            secret=v.secret or "",
            checkcommand=v.checkcommand or "/bin/true",
            checktimeout=checktimeout,
            checkcount=checkcount,
            httpsverify=httpsverify,
            hostname=self.hostname,
            ca_certs=cafile[1] if cafile else None,
            dnsquerytype=v.dnsquerytype if service is CheckService.DNS else None,
            dynamicweight=_first(v.dynamicweight, g.dynamicweight, False),
        )
        if fwmark is not None:
            shown_vip = str(fwmark)
        elif isinstance(v.address.address, IPv6Address):
            shown_vip = f"[{v.address.address}]"
        else:
            shown_vip = str(v.address.address)
        reals = self.reals(v, inputs, shown_vip, vport)
        fallback_line = v.fallback6 if v.family == 6 else v.fallback
        fb_span = v.spans.get("fallback6" if v.family == 6 else "fallback", v.span)
        if fallback_line is None:
            fallback_line = g.fallback6 if v.family == 6 else g.fallback
            fb_span = g.spans.get("fallback6" if v.family == 6 else "fallback", v.span)
        return Virtual(
            protocol=protocol,
            family=v.family,
            address=v.address.address,
            port=vport,
            fwmark=fwmark,
            scheduler=v.scheduler or "wrr",
            schedflags=v.schedflags or (),
            persistent=v.persistent,
            netmask=netmask,
            ops=ops,
            reals=reals,
            fallback=self.fallback(fallback_line, fb_span, protocol, vport),
            checktype=checktype,
            combined_connects=v.combined_connects,
            service=service,
            checkcommand=inputs.checkcommand,
            checkport=v.checkport,
            checktimeout=checktimeout,
            negotiatetimeout=negotiatetimeout,
            checkinterval=checkinterval,
            checkcount=checkcount,
            failurecount=v.failurecount or g.failurecount or 1,
            rise=v.rise or g.rise or 1,
            slowstart=_first(v.slowstart, g.slowstart, 0.0),
            agentport=_first(v.agentport, g.agentport, None),
            agentinterval=_first(v.agentinterval, g.agentinterval, checkinterval),
            agenttimeout=_first(v.agenttimeout, g.agenttimeout, checktimeout),
            dynamicweight=_first(v.dynamicweight, g.dynamicweight, False),
            quiescent=quiescent,
            cleanstop=_first(v.cleanstop, g.cleanstop, True),
            request=v.request or "/",
            receive=v.receive or "",
            httpmethod=inputs.httpmethod,
            virtualhost=v.virtualhost,
            login=inputs.login,
            passwd=inputs.passwd,
            database=inputs.database,
            secret=inputs.secret,
            httpsverify=inputs.httpsverify,
            httpscafile=cafile[0] if cafile else None,
            dnsquerytype=inputs.dnsquerytype,
            fallbackcommand=_first(v.fallbackcommand, g.fallbackcommand, ()),
            emailalert=_first(v.emailalert, g.emailalert, ()),
            emailalertfreq=_first(v.emailalertfreq, g.emailalertfreq, 0),
            emailalertstatus=_first(v.emailalertstatus, g.emailalertstatus, tuple(DaemonState)),
            smtp=_first(v.smtp, g.smtp, None),
            monitorfile=v.monitorfile,
            servicename=v.servicename,
            comment=v.comment,
            load=v.load,
            span=v.span,
        )

    def check_dnsquerytype(self, v: RawVirtual, service: CheckService) -> None:
        """A query type that cannot apply: to another service, or to an address (but PTR)."""
        qtype = v.dnsquerytype
        if qtype is None:
            return
        span = v.spans.get("dnsquerytype", v.span)
        if service is not CheckService.DNS:
            self.warn(span, f"dnsquerytype only applies to service=dns (not {service}); ignored")
        elif qtype is not DnsQueryType.PTR and literal(bare_request(v.request)) is not None:
            self.error(
                span,
                f"dnsquerytype={qtype} asks for a name's records, but request= is an address "
                "(use dnsquerytype=PTR, or leave it unset)",
            )

    def protocol(self, v: RawVirtual) -> ServiceProtocol:
        assert v.address is not None  # noqa: S101 - checked by the caller
        span = v.spans.get("protocol", v.span)
        if v.address.fwmark is not None:
            if v.protocol not in (None, ServiceProtocol.FWM):
                raise_at = "protocol must be fwm if the virtual service is a fwmark (a number)"
                self.error(span, raise_at)
            return ServiceProtocol.FWM
        if v.protocol is ServiceProtocol.FWM:
            self.error(
                span, "protocol must be tcp or udp if the virtual service is an address and port"
            )
            return ServiceProtocol.TCP
        return v.protocol or ServiceProtocol.TCP

    def reals(
        self, v: RawVirtual, base: CheckInputs, shown_vip: str, vport: int
    ) -> tuple[Real, ...]:
        transport = Transport.UDP if base.protocol is ServiceProtocol.UDP else Transport.TCP
        default_port = SERVICES[base.service].default_port or 0
        uses_port = base.checktype in (*_USES_NEGOTIATE, CheckType.CONNECT)
        shared_negotiate = negotiate_spec(base)
        shared_connect = connect_spec(base)
        shared_primary = primary_spec(base, shared_negotiate, shared_connect)
        reals: list[Real] = []
        seen: dict[tuple[object, int], Span] = {}
        reported: set[str] = set()
        if base.checktype in _USES_NEGOTIATE and not v.reals:
            missing = missing_settings(base)
            if missing:
                self.error(v.spans.get("service", v.span), missing)
        for raw in v.reals:
            line = raw.line
            negotiate, primary, inputs = shared_negotiate, shared_primary, base
            if line.request is not None and line.receive is not None:
                try:
                    pattern = compile_receive(line.receive)
                except Invalid as exc:
                    self.error(raw.span, str(exc))
                    continue
                inputs = replace(base, request=line.request, receive=pattern)
                negotiate = negotiate_spec(inputs)
                primary = primary_spec(inputs, negotiate, shared_connect)
            if base.checktype in _USES_NEGOTIATE:
                missing = missing_settings(inputs)
                if missing and missing not in reported:
                    reported.add(missing)
                    self.error(v.spans.get("service", v.span), missing)
            check_port = v.checkport or line.port or default_port
            if (
                check_port == 0
                and uses_port
                and base.protocol is not ServiceProtocol.UDP
                and (base.service is not CheckService.NONE or base.checktype is CheckType.CONNECT)
            ):
                self.warn(
                    raw.span,
                    f"no port to check for this real (service={base.service}"
                    " has no default port): set checkport",
                )
            for addr in line.addresses:
                key = (addr, line.port)
                if key in seen:
                    shown = f"[{addr}]" if addr.version == 6 else str(addr)
                    self.error(
                        raw.span,
                        f"duplicate real server {shown}:{line.port} "
                        f"(first at line {seen[key].line})",
                    )
                    continue
                seen[key] = raw.span
                target = Target(
                    address=addr,
                    port=check_port,
                    transport=transport,
                    virtual=shown_vip,
                    virtual_port=vport,
                    real_port=line.port,
                )
                reals.append(
                    Real(
                        address=addr,
                        port=line.port,
                        forward=line.forward,
                        weight=line.weight,
                        lower=line.lower,
                        upper=line.upper,
                        request=line.request,
                        receive=line.receive,
                        target=target,
                        negotiate=negotiate,
                        connect=shared_connect,
                        check=primary,
                        span=raw.span,
                    )
                )
        return tuple(reals)

    def fallback(
        self, line: FallbackLine | None, span: Span, protocol: ServiceProtocol, vport: int
    ) -> Fallback | None:
        if line is None:
            return None
        fb_port = vport
        if line.port_word is not None:
            proto = "tcp" if protocol is ServiceProtocol.FWM else str(protocol)
            try:
                fb_port = port(line.port_word, proto, "fallback server")
            except Invalid as exc:
                self.error(span, str(exc))
        return Fallback(address=line.address, port=fb_port, forward=line.forward, span=span)


def _first(a: _T | None, b: _T | None, default: _T) -> _T:
    if a is not None:
        return a
    return b if b is not None else default


def build(
    path: str, parsed: Parsed, hostname: str, driver_available: Callable[[str], bool]
) -> tuple[Config, list[Diagnostic]]:
    """The model of ``parsed`` and the diagnostics found while computing effective values."""
    builder = _Builder(path, parsed, hostname, driver_available)
    return builder.build(), builder.diags
