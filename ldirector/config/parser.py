"""Second stage of the config layer: directive lines -> raw global and virtual settings.

Pure apart from the injected resolver and a few existence checks on paths. Every problem becomes a
diagnostic at its line and parsing goes on, so one run reports everything. ``build`` then applies
defaults and inheritance.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from checks.types import HttpMethod
from ldirector.config import addresses
from ldirector.config.converters import (
    cafile_value,
    checktype_value,
    compile_receive,
    dnsquerytype_value,
    email_states,
    fallbackcommand_value,
    httpstatus_value,
    logfile_value,
    netmask_value,
    sysctl_value,
)
from ldirector.config.directives import DIRECTIVES, Scope
from ldirector.config.errors import Diagnostic, Severity, Span, internal_error
from ldirector.config.lexer import Line
from ldirector.config.mail import email_addresses, email_from, smtp_value
from ldirector.config.model import CheckService, ServiceProtocol
from ldirector.config.names import Resolver
from ldirector.config.raw import RawCommon, RawGlobal, RawReal, RawVirtual
from ldirector.config.values import (
    Invalid,
    Lenient,
    clip,
    decimal,
    duration,
    hint,
    integer,
    quoted,
    seconds,
    shown,
    unquote,
    yes_no,
)
from ldirector.ipvs.types import SCHEDFLAG_WORDS, SCHEDULERS

SCHEDFLAGS = frozenset(SCHEDFLAG_WORDS)
#: More real servers than this in one config is a typo in a range, not a deployment: each one
#: is probed on its own, so the bound keeps a config from exhausting memory and sockets.
MAX_REALS = 100_000
_R = TypeVar("_R", bound=RawCommon)


@dataclass
class Parsed:
    """Everything the parser collected, in file order."""

    globals: RawGlobal = field(default_factory=RawGlobal)
    virtuals: list[RawVirtual] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


class _Parser:
    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.out = Parsed()
        self.reals = 0  # real servers in the whole config, ranges expanded

    def error(self, span: Span, message: str) -> None:
        self.out.diagnostics.append(Diagnostic(Severity.ERROR, span, message))

    def warn(self, span: Span, message: str) -> None:
        self.out.diagnostics.append(Diagnostic(Severity.WARNING, span, message))

    def run(self, lines: list[Line]) -> Parsed:
        current: RawVirtual | None = None
        for line in lines:
            info = DIRECTIVES.get(line.key)
            if info is None:
                self.error(line.span, _unknown(line.key))
                continue
            if not line.indented:
                current = None
                if info.scope is Scope.START:
                    current = self.start_virtual(line)
                elif info.scope is Scope.VIRTUAL:
                    self.error(line.span, f"{line.key} is only valid inside a virtual block")
                else:
                    self.guarded(self.global_line, self.out.globals, line)
            elif current is None:
                self.error(line.span, f"indented {line.key} line outside a virtual block")
            elif info.scope is Scope.START:
                self.error(line.span, f"{line.key} must start in column 0 to open a new block")
            elif info.scope is Scope.GLOBAL:
                self.error(line.span, f"{line.key} is only valid in the global section")
            else:
                self.guarded(self.virtual_line, current, line)
        return self.out

    def guarded(self, handler: Callable[[_R, Line], None], raw: _R, line: Line) -> None:
        try:
            if line.value is None and line.key != "supervised":
                raise Invalid(f"{line.key} needs a value: {line.key} = VALUE")
            handler(raw, line)
            raw.spans[line.key] = line.span
        except Lenient as exc:
            self.warn(line.span, f"{line.key}: {exc}")
            self.store_lenient(raw, line, exc.value)
            raw.spans[line.key] = line.span
        except Invalid as exc:
            self.error(line.span, str(exc))
        except Exception as exc:  # a bug: still one diagnostic at its line, never a traceback
            self.error(line.span, internal_error(line.key, exc))

    def store_lenient(self, raw: RawCommon, line: Line, value: int) -> None:
        if line.key in {"checktimeout", "negotiatetimeout", "checkinterval", "resyncinterval"}:
            setattr(raw, line.key, float(value))
        elif hasattr(raw, line.key):
            setattr(raw, line.key, value)

    def start_virtual(self, line: Line) -> RawVirtual:
        family = 6 if line.key == "virtual6" else 4
        raw = RawVirtual(family=family, span=line.span)
        try:
            raw.address = addresses.parse_virtual(line.value or "", family, self.resolve)
        except Invalid as exc:
            self.error(line.span, str(exc))
        except Exception as exc:  # a bug: still one diagnostic at its line, never a traceback
            self.error(line.span, internal_error(line.key, exc))
        # Kept even when invalid so that its indented lines are still checked, not misreported.
        self.out.virtuals.append(raw)
        return raw

    # --- directives valid in both scopes ---------------------------------------------------

    def common_line(self, raw: RawCommon, line: Line, glob: bool) -> bool:
        """Handle a directive of Scope.BOTH; False when ``line`` is not one."""
        key, value = line.key, line.value or ""
        suffix = " value" if glob else ""
        match key:
            case "checktimeout":
                raw.checktimeout = seconds(value, f"invalid check timeout{suffix}")
            case "negotiatetimeout":
                raw.negotiatetimeout = seconds(value, f"invalid negotiate timeout{suffix}")
            case "checkinterval":
                msg = "invalid check interval value" if glob else "invalid checkinterval"
                raw.checkinterval = seconds(value, msg)
            case "checkcount":
                self.warn(
                    line.span,
                    "checkcount option is deprecated and slated for removal.  "
                    "please see 'failurecount'",
                )
                raw.checkcount = integer(value, f"invalid check count{suffix}")
            case "failurecount":
                raw.failurecount = integer(value, f"invalid failure count{suffix}")
            case "rise":
                raw.rise = integer(value, f"invalid rise{suffix}")
            case "slowstart":
                raw.slowstart = duration(value, f"invalid slowstart{suffix}")
            case "agentport":
                raw.agentport = integer(value, f"invalid agentport{suffix}", maximum=65535)
            case "agentinterval" | "agenttimeout":
                setattr(raw, key, seconds(value, f"invalid {key}{suffix}"))
            case "quiescent" | "cleanstop" | "httpsverify" | "dynamicweight":
                setattr(raw, key, yes_no(key, value))
            case "httpscafile":
                raw.httpscafile = cafile_value(value)
            case "connecttimeout":
                raise Invalid("connecttimeout directive deprecated in favour of negotiatetimeout")
            case "fallback" | "fallback6":
                family = 6 if key == "fallback6" else 4
                if isinstance(raw, RawVirtual) and raw.family != family:
                    other = "fallback6" if key == "fallback" else "fallback"
                    raise Invalid(f'cannot specify "{key}" here.  please use "{other}" instead')
                setattr(raw, key, addresses.parse_fallback(value, family, self.resolve))
            case "fallbackcommand":
                raw.fallbackcommand = fallbackcommand_value(value, glob)
            case "emailalert":
                raw.emailalert = email_addresses(value)
            case "emailalertfreq":
                raw.emailalertfreq = integer(value, "invalid email alert frequency", minimum=0)
            case "emailalertstatus":
                raw.emailalertstatus = email_states(value)
            case "smtp":
                raw.smtp = smtp_value(value)
            case _:
                return False
        return True

    # --- global section ----------------------------------------------------------------------

    def global_line(self, g: RawGlobal, line: Line) -> None:
        if self.common_line(g, line, glob=True):
            return
        key, value = line.key, line.value or ""
        match key:
            case "autoreload" | "fork" | "readdquiescent":
                setattr(g, key, yes_no(key, value))
            case "supervised":
                if line.value is None:
                    self.warn(
                        line.span,
                        "please update your config not to use a bare supervised "
                        "directive (it means supervised = yes)",
                    )
                    g.supervised = True
                else:
                    g.supervised = yes_no(key, value)
            case "callback":
                g.callback = quoted(value, "invalid callback: a program path is required")
            case "logfile":
                g.logfile = logfile_value(quoted(value, "invalid logfile"))
            case "execute":
                if not value:
                    raise Invalid("execute needs a config file name")
                g.execute.append(value)
            case "emailalertfrom":
                g.emailalertfrom = email_from(value)
            case "maintenancedir":
                path = unquote(value)
                if not path:
                    raise Invalid("maintenance directory not specified")
                if not os.path.isdir(path):
                    self.warn(line.span, f"maintenance directory does not exist: {path}")
                g.maintenancedir = path
            case "resyncinterval":
                g.resyncinterval = seconds(value, "invalid resync interval")
            case "httpstatus":
                g.httpstatus = httpstatus_value(value)
            case "expire_quiescent_template" | "expire_nodest_conn":
                g.sysctls[key] = int(yes_no(key, value))
            case "ipvs_sysctl":
                name, number = sysctl_value(value)
                g.sysctls[name] = number
            case "syncdaemon" | "syncid" | "syncmaxlen" | "syncgroup" | "syncport" | "syncttl":
                g.sync.take(key, value, line.span)
            case "timeout":
                raise Invalid(
                    "timeout directive deprecated in favour of checktimeout and negotiatetimeout"
                )
            case _:  # pragma: no cover - DIRECTIVES and this match are kept in step by tests
                raise Invalid(f"{key} is only valid inside a virtual block")

    # --- virtual blocks ----------------------------------------------------------------------

    def virtual_line(self, v: RawVirtual, line: Line) -> None:
        if self.common_line(v, line, glob=False):
            return
        key, value = line.key, line.value or ""
        match key:
            case "real" | "real6":
                family = 6 if key == "real6" else 4
                if family != v.family:
                    other = "real" if key == "real6" else "real6"
                    raise Invalid(f'cannot specify "{key}" here.  please use "{other}" instead')
                real = addresses.parse_real(value, family, self.resolve)
                self.reals += len(real.addresses)
                if self.reals > MAX_REALS:
                    if self.reals - len(real.addresses) <= MAX_REALS:  # report the crossing once
                        raise Invalid(
                            f"too many real servers: this line brings the config to {self.reals}"
                            f" (at most {MAX_REALS})"
                        )
                    return
                v.reals.append(RawReal(real, line.span))
            case "checktype":
                v.checktype, v.combined_connects = checktype_value(value)
            case "service":
                word = value.split()[0].lower() if value.split() else ""
                try:
                    v.service = CheckService(word)
                except ValueError:
                    raise Invalid(
                        "service must be "
                        + ", ".join(sorted(CheckService)[:-1])
                        + " or submission"
                        + hint(word, CheckService)
                    ) from None
            case "checkport":
                checkport = decimal(value, 1, 65535)
                if checkport is None:
                    raise Invalid("checkport must be in range 1..65535")
                v.checkport = checkport
            case "request":
                v.request = quoted(value, "no request string specified")
            case "receive":
                receive = quoted(value, "invalid receive string")
                # Both or neither: build reads the pattern and the text as one setting.
                v.receive_re, v.receive = compile_receive(receive), receive
            case "httpmethod":
                try:
                    v.httpmethod = HttpMethod(value.upper())
                except ValueError:
                    raise Invalid("httpmethod must be GET or HEAD") from None
            case "virtualhost":
                v.virtualhost = quoted(value, "invalid virtualhost")
            case "dnsquerytype":
                v.dnsquerytype = dnsquerytype_value(value)
            case "login":
                v.login = quoted(value, "invalid login string")
            case "passwd":
                v.passwd = quoted(value, "invalid password")
            case "database":
                v.database = quoted(value, "invalid database")
            case "secret":
                v.secret = quoted(value, "invalid secret")
            case "checkcommand":
                v.checkcommand = quoted(value, "invalid check command")
                if len(v.checkcommand.split()) > 1:
                    self.warn(
                        line.span,
                        "checkcommand is run without a shell, so this whole "
                        f"text names one program: {v.checkcommand!r}",
                    )
            case "scheduler":
                if not re.fullmatch(r"[a-z]+", value):
                    raise Invalid("invalid scheduler, should be only lowercase letters (a-z)")
                if value not in SCHEDULERS:
                    self.warn(
                        line.span, f"unknown scheduler {shown(value)}: the kernel may lack it"
                    )
                v.scheduler = value
            case "schedflags":
                words = value.split()
                if not words:
                    raise Invalid("schedflags needs a value: schedflags = FLAG[,FLAG...]")
                flags = tuple(f for f in words[0].split(",") if f)
                bad = [f for f in flags if f not in SCHEDFLAGS]
                if bad or not flags:
                    listed = ", ".join(bad) if bad else repr(value)
                    raise Invalid(
                        f"invalid sched-flags: {listed} (known: "
                        + ", ".join(sorted(SCHEDFLAGS))
                        + ")"
                    )
                v.schedflags = flags
            case "persistent":
                seconds_ = integer(value, "invalid persistent timeout", minimum=0)
                v.persistent = seconds_ or None
            case "netmask":
                v.netmask = netmask_value(value, v.family)
            case "protocol":
                try:
                    v.protocol = ServiceProtocol(value)
                except ValueError:
                    raise Invalid("invalid protocol: must be tcp, udp or fwm") from None
            case "ops":
                v.ops = yes_no(key, value)
            case "monitorfile":
                monitorfile = quoted(value, "invalid monitorfile")
                parent = os.path.dirname(monitorfile) or "."
                if not os.path.isdir(parent):
                    raise Invalid(
                        f"unable to open monitorfile {monitorfile}: "
                        f"directory {parent} does not exist"
                    )
                v.monitorfile = monitorfile
            case "servicename":
                v.servicename = value
            case "comment":
                v.comment = value
            case "load":
                v.load = quoted(value, "invalid string for load testing")
            case _:  # pragma: no cover - DIRECTIVES and this match are kept in step by tests
                raise Invalid(f"{key} is only valid in the global section")


def parse_lines(lines: list[Line], resolve: Resolver) -> Parsed:
    """Collect raw settings and diagnostics from lexed lines."""
    return _Parser(resolve).run(lines)


def _unknown(key: str) -> str:
    key = clip(key)
    return f"unknown directive {key!r}{hint(key.lower(), DIRECTIVES)}"
