"""THE table of directives: every name the parser accepts, where it may appear, and its default.

The parser dispatches on these names and a test checks that docs/config-reference.md documents
every one, so the reference cannot drift from the code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


class Scope(enum.StrEnum):
    """Where a directive may appear."""

    GLOBAL = "global"  # column 0, outside virtual blocks
    VIRTUAL = "virtual"  # indented, inside a virtual block
    BOTH = "both"  # either; the per-virtual value overrides the global one
    START = "start"  # virtual / virtual6 themselves: column 0, opens a block


@dataclass(frozen=True, slots=True)
class Directive:
    """One directive: its name, scope, default (as shown in the docs) and a one-line summary."""

    name: str
    scope: Scope
    default: str
    summary: str


def _table(*rows: tuple[str, Scope, str, str]) -> Mapping[str, Directive]:
    return MappingProxyType({row[0]: Directive(*row) for row in rows})


G, V, B, S = Scope.GLOBAL, Scope.VIRTUAL, Scope.BOTH, Scope.START

DIRECTIVES: Mapping[str, Directive] = _table(
    ("virtual", S, "-", "opens an IPv4 virtual service: ADDR:PORT, NAME:PORT or a firewall mark"),
    ("virtual6", S, "-", "opens an IPv6 virtual service: [ADDR]:PORT, NAME:PORT or a mark"),
    # global only
    ("autoreload", G, "no", "reload when the config file changes on disk"),
    ("callback", G, "unset", "program run with the config path when the file changes"),
    ("logfile", G, "/var/log/ldirectord.log", "log file (starts with /) or syslog facility"),
    ("execute", G, "none", "another config whose ldirector instance this one manages"),
    ("fork", G, "no", "ldirectord's one-process-per-virtual mode (per-virtual checkinterval)"),
    ("supervised", G, "no", "stay in the foreground, no pid file"),
    ("readdquiescent", G, "no", "re-add reals an operator quiesced or removed"),
    ("emailalertfrom", G, "user@host", "From address of alert emails"),
    ("maintenancedir", G, "unset", "directory whose files put reals into maintenance"),
    ("expire_quiescent_template", G, "unset", "kernel toggle: expire templates to weight-0 reals"),
    ("expire_nodest_conn", G, "unset", "kernel toggle: expire connections to removed reals"),
    ("ipvs_sysctl", G, "none", "any other /proc/sys/net/ipv4/vs toggle: NAME VALUE"),
    ("resyncinterval", G, "10", "ldirector extension: seconds between full IPVS table resyncs"),
    ("httpstatus", G, "off", "ldirector extension: [ADDRESS:]PORT of /metrics, /status and /"),
    ("syncdaemon", G, "none", "ldirector extension: connection sync daemon: master|backup|both IF"),
    ("syncid", G, "0", "ldirector extension: sync daemon id 0..255 (backup: 0 accepts any)"),
    ("syncmaxlen", G, "from MTU", "ldirector extension: sync message payload size in bytes"),
    ("syncgroup", G, "224.0.0.81", "ldirector extension: sync multicast group (IPv4 or IPv6)"),
    ("syncport", G, "8848", "ldirector extension: sync UDP port"),
    ("syncttl", G, "1", "ldirector extension: sync multicast TTL 1..255"),
    ("timeout", G, "-", "deprecated, always an error (use checktimeout / negotiatetimeout)"),
    # global and per virtual
    ("checktimeout", B, "5", "timeout of connect, ping and external checks (seconds)"),
    ("negotiatetimeout", B, "30", "timeout of negotiate (service) checks (seconds)"),
    ("connecttimeout", B, "-", "deprecated, always an error (use negotiatetimeout)"),
    ("checkinterval", B, "10", "seconds between two checks of a real"),
    ("checkcount", B, "1", "deprecated: ping attempts per check"),
    ("failurecount", B, "1", "consecutive failures before a real is taken out"),
    ("rise", B, "1", "ldirector extension: consecutive successes before a down real is back"),
    ("slowstart", B, "0", "ldirector extension: seconds a real's weight ramps up after coming up"),
    ("dynamicweight", B, "no", "ldirector extension: external exit 2-255 sets weight status-2"),
    ("agentport", B, "unset", "ldirector extension: TCP port of the reals' load agents"),
    ("agentinterval", B, "checkinterval", "ldirector extension: seconds between agent checks"),
    ("agenttimeout", B, "checktimeout", "ldirector extension: timeout of agent checks (seconds)"),
    ("quiescent", B, "no", "failed reals get weight 0 instead of being removed"),
    ("cleanstop", B, "yes", "remove the virtual services from IPVS on stop"),
    ("fallback", B, "none", "IPv4 server used when no real is up: HOST[:PORT] [FORWARD]"),
    ("fallback6", B, "none", "IPv6 server used when no real is up: [ADDR][:PORT] [FORWARD]"),
    ("fallbackcommand", B, "none", "command run with start/stop when all reals go down/up"),
    ("emailalert", B, "none", "alert email recipients (comma list)"),
    ("emailalertfreq", B, "0", "seconds between reminder emails (0: no reminders)"),
    ("emailalertstatus", B, "all", "daemon states that send alerts"),
    ("smtp", B, "unset", "SMTP server for alert emails"),
    ("httpsverify", B, "no", "ldirector extension: verify HTTPS certificates of reals"),
    ("httpscafile", B, "unset", "ldirector extension: PEM file of the CAs httpsverify trusts"),
    # per virtual only
    ("real", V, "-", "IPv4 real server: HOST[->HOST][:PORT] FORWARD [WEIGHT] [REQ RECV] [l:] [u:]"),
    ("real6", V, "-", "IPv6 real server: [ADDR][:PORT] FORWARD [WEIGHT] [REQ RECV] [l:] [u:]"),
    ("checktype", V, "negotiate", "connect, negotiate, ping, external, external-perl, on, off, N"),
    ("service", V, "by port", "protocol the negotiate check speaks"),
    ("checkport", V, "real port", "port the checks probe"),
    ("request", V, "/", "what the check asks for (path, query, name, SQL)"),
    ("receive", V, "empty", "regular expression the answer must match"),
    ("httpmethod", V, "GET", "GET or HEAD"),
    ("virtualhost", V, "unset", "HTTP Host header, and the TLS server name (SNI) of https"),
    ("dnsquerytype", V, "A (PTR for an address)", "ldirector extension: record type of dns"),
    ("login", V, "empty", "user name of the check"),
    ("passwd", V, "empty", "password of the check"),
    ("database", V, "empty", "SQL database name"),
    ("secret", V, "empty", "RADIUS shared secret"),
    ("checkcommand", V, "/bin/true", "program of external checks"),
    ("scheduler", V, "wrr", "IPVS scheduler"),
    ("schedflags", V, "none", "IPVS scheduler flags (comma list)"),
    ("persistent", V, "unset", "persistence timeout in seconds"),
    ("netmask", V, "unset", "persistence granularity"),
    ("protocol", V, "tcp (udp for port 53)", "tcp, udp or fwm"),
    ("ops", V, "no", "one-packet scheduling (UDP only)"),
    ("monitorfile", V, "unset", "file that gets a line per check result"),
    ("servicename", V, "unset", "name used in alert emails"),
    ("comment", V, "unset", "comment used in alert emails"),
    ("load", V, "unset", "accepted and ignored, as ldirectord does"),
)
