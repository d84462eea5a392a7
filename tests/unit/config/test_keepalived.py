"""ldirector import keepalived.conf: every keepalived keyword is converted or reported at its line.

Each row below writes a keepalived.conf with one setting put into a known-good file, converts
it and checks the setting's effect: a directive in the ldirectord.cf written, or a warning at
the setting's own line. Whatever it prints must pass ``ldirector check``. The golden corpus in
testdata/keepalived holds whole files with the text and warnings they must give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ldirector.config import Config, Diagnostic, Severity
from ldirector.config.keepalived import convert, convert_file
from tests.unit.config.cfgtools import TESTDATA, load_text

CORPUS = TESTDATA / "keepalived"

#: A file that converts without a warning; {vs}, {rs}, {checker} and {top} take a row's lines.
TEMPLATE = """\
global_defs {{
    notification_email_from lb@example.test
}}
{top}
virtual_server 192.0.2.100 80 {{
    protocol TCP
{vs}
    real_server 192.0.2.11 80 {{
{rs}
{checker}
    }}
}}
"""
HTTP = """\
        HTTP_GET {{
{ck}
            url {{
                path /health
{url}
            }}
        }}"""


@dataclass(frozen=True)
class Row:
    """One setting: where it goes, and what it must give (a directive, or a warning)."""

    where: str  # vs, rs, ck (inside HTTP_GET), url, top, or checker (replaces HTTP_GET)
    lines: str
    directive: str | None = None
    warning: str | None = None
    #: More lines for the virtual_server (a UDP service for DNS_CHECK, say).
    vs: str = ""


def build(row: Row) -> tuple[str, int]:
    """The file for ``row`` and the line its (first) setting is on."""
    marker = "@@ROW@@"
    slots = {"vs": "", "rs": "", "ck": "", "url": "", "top": ""}
    checker = HTTP
    if row.where == "checker":
        checker = marker
    else:
        slots[row.where] = marker
    inner = checker.format(ck=slots.pop("ck"), url=slots.pop("url"))
    if row.vs:
        slots["vs"] = row.vs + "\n" + slots["vs"]
    text = TEMPLATE.format(checker=inner, **slots)
    text = "\n".join(line for line in text.split("\n") if line.strip() or line == "")
    line = text[: text.index(marker)].count("\n") + 1
    return text.replace(marker, row.lines), line


def converted(text: str, path: str = "keepalived.conf") -> tuple[str, list[Diagnostic], Config]:
    out, diagnostics = convert(text, path)
    return out, diagnostics, load_text(out)  # raises ConfigError if check would fail


def settings_of(out: str) -> set[str]:
    return {line.strip() for line in out.splitlines() if line.strip() and not line.startswith("#")}


def test_the_template_converts_without_a_warning() -> None:
    out, diagnostics, config = converted(build(Row("vs", ""))[0])
    assert diagnostics == []
    assert out.split("\n")[4:] == [
        "emailalertfrom=lb@example.test",
        "",
        "# keepalived.conf:5",
        "virtual=192.0.2.100:80",
        "\treal=192.0.2.11:80 masq 1",
        "\tprotocol=tcp",
        "\tscheduler=wlc",
        "\tchecktype=negotiate",
        "\tservice=http",
        "\tcheckinterval=60",
        "\tnegotiatetimeout=5",
        "\tfailurecount=2",
        '\trequest="/health"',
        "\tquiescent=no",
        "",
    ]
    virtual = config.virtuals[0]
    assert (virtual.scheduler, virtual.checkinterval, virtual.failurecount) == ("wlc", 60, 2)


UDP = "protocol UDP"
MASK = "255.255.255.0"
# fmt: off
CONVERTED = [
    # virtual_server
    Row("vs", "lvs_sched rr", "scheduler=rr"),
    Row("vs", "lb_algo sh", "scheduler=sh"),
    Row("vs", "lvs_method DR", "real=192.0.2.11:80 gate 1"),
    Row("vs", "lb_kind TUN", "real=192.0.2.11:80 ipip 1"),
    Row("vs", "lvs_method TUN type ipip", "real=192.0.2.11:80 ipip 1"),
    Row("vs", "lvs_method NAT", "real=192.0.2.11:80 masq 1"),
    Row("vs", "persistence_timeout 50", "persistent=50"),
    Row("vs", "persistence_timeout", "persistent=360"),
    Row(
        "vs",
        "persistence_timeout 9\npersistence_granularity 255.255.255.0",
        "netmask=255.255.255.0",
    ),
    Row("vs", "persistence_timeout 9\npersistence_granularity 24", "netmask=255.255.255.0"),
    Row("vs", "protocol UDP", "protocol=udp"),
    Row("vs", "virtualhost www.example.test", "virtualhost=www.example.test"),
    Row("vs", "sorry_server 192.0.2.9 8080", "fallback=192.0.2.9:8080 masq"),
    Row("vs", "sorry_server 192.0.2.9", "fallback=192.0.2.9 masq"),
    Row(
        "vs", "sorry_server 192.0.2.9 81\nsorry_server_lvs_method DR", "fallback=192.0.2.9:81 gate"
    ),
    Row("vs", "protocol UDP\nops", "ops=yes"),
    Row("vs", "flag-1", "schedflags=flag-1"),
    Row("vs", "lvs_sched sh\nsh-port\nsh-fallback", "schedflags=sh-port,sh-fallback"),
    Row("vs", "lvs_sched mh\nmh-port\nmh-fallback", "schedflags=mh-port,mh-fallback"),
    Row("vs", "flag-2\nflag-3", "schedflags=flag-2,flag-3"),
    Row("vs", "connect_timeout 2", "negotiatetimeout=2"),
    Row("vs", "retry 4", "failurecount=5"),
    Row("vs", "delay_loop 7.5", "checkinterval=7.5"),
    Row("vs", "inhibit_on_failure", "quiescent=yes"),
    # keepalived's alpha (reals down until checked) is what ldirector always does
    Row("vs", "alpha", "checktype=negotiate"),
    Row("rs", "alpha yes", "checktype=negotiate"),
    Row("ck", "alpha", "checktype=negotiate"),
    Row("vs", "inhibit_on_failure off", "quiescent=no"),
    Row("vs", "quorum 1\nhysteresis 0", "quiescent=no"),
    # real_server
    Row("rs", "weight 5", "real=192.0.2.11:80 masq 5"),
    Row("rs", "weight 0", "real=192.0.2.11:80 masq 0"),
    Row("rs", "uthreshold 100\nlthreshold 10", "real=192.0.2.11:80 masq 1 l:10 u:100"),
    Row("rs", "lvs_method DR", "real=192.0.2.11:80 gate 1"),
    Row("rs", "inhibit_on_failure yes", "quiescent=yes"),
    Row("rs", "connect_timeout 2", "negotiatetimeout=2"),
    Row("rs", "retry 0", "failurecount=1"),
    Row("rs", "delay_loop 3", "checkinterval=3"),
    Row("rs", "virtualhost rs.example.test", "virtualhost=rs.example.test"),
    # every checker
    Row("ck", "connect_port 8080", "checkport=8080"),
    Row("ck", "connect_port 80", "checkinterval=60"),  # the real's own port: no checkport
    Row("ck", "connect_ip 192.0.2.11", "checkinterval=60"),
    Row("ck", "connect_timeout 1", "negotiatetimeout=1"),
    Row("ck", "retry 2", "failurecount=3"),
    Row("ck", "nb_get_retry 6", "failurecount=7"),
    Row("ck", "delay_loop 2", "checkinterval=2"),
    Row("ck", "http_protocol 1.1", "service=http"),
    Row("ck", "http_protocol 1.0C", "service=http"),
    Row("ck", "virtualhost ck.example.test", "virtualhost=ck.example.test"),
    Row("url", "regex ^ok$", 'receive="^ok$"'),
    Row("url", 'regex "a b#c"', 'receive="a b#c"'),
    Row("url", "status_code 200-299", "service=http"),
    Row("url", "status_code 200-250 251-299", "service=http"),
    Row("url", "virtualhost url.example.test", "virtualhost=url.example.test"),
    Row("checker", "SSL_GET {\n url {\n path /\n }\n enable_sni\n }", "service=https"),
    Row("checker", "TCP_CHECK {\n connect_timeout 4\n }", "checktimeout=4"),
    Row("checker", "TCP_CHECK {\n }", "checktype=connect"),
    Row("checker", "MISC_CHECK {\n misc_path /bin/true\n }", 'checkcommand="/bin/true"'),
    Row("checker", "MISC_CHECK {\n misc_path /bin/true\n }", "failurecount=1"),
    Row("checker", 'MISC_CHECK {\n misc_path "/bin/true"\n misc_timeout 9\n }', "checktimeout=9"),
    Row("checker", "MISC_CHECK {\n misc_path /bin/true\n delay_loop 4\n }", "checktimeout=4"),
    Row(
        "checker",
        "DNS_CHECK {\n type AAAA\n name www.example.test\n }",
        "dnsquerytype=AAAA",
        vs=UDP,
    ),
    Row(
        "checker", "DNS_CHECK {\n type mx\n name example.test\n }", 'request="example.test"', vs=UDP
    ),
    Row("checker", "DNS_CHECK {\n }", "dnsquerytype=SOA", vs=UDP),
    Row("checker", "DNS_CHECK {\n }", 'request="."', vs=UDP),
    Row("checker", "DNS_CHECK {\n }", "failurecount=4", vs=UDP),
    Row("checker", "SMTP_CHECK {\n }", "service=smtp"),
    Row("checker", "SMTP_CHECK {\n host {\n connect_port 2525\n }\n }", "checkport=2525"),
    Row("checker", "SMTP_CHECK {\n connect_port 587\n }", "checkport=587"),
    Row("checker", "PING_CHECK {\n }", "checktype=ping"),
    Row("checker", "", "checktype=on"),
    # global_defs and whole-file
    Row(
        "top",
        "global_defs {\n notification_email {\n a@example.test\n b@example.test\n }\n}",
        "emailalert=a@example.test,b@example.test",
    ),
    Row("top", "global_defs {\n smtp_server 192.0.2.25\n}", "smtp=192.0.2.25:25"),
    Row("top", "global_defs {\n smtp_server 2001:db8::25 2525\n}", "smtp=[2001:db8::25]:2525"),
    Row(
        "top",
        "global_defs {\n notification_email_from x@example.test\n}",
        "emailalertfrom=x@example.test",
    ),
]


# fmt: on


def _id(row: Row) -> str:
    return f"{row.where}:{row.lines.split()[0] if row.lines else '-'}"


@pytest.mark.parametrize("row", CONVERTED, ids=_id)
def test_supported_settings_are_converted_silently(row: Row) -> None:
    text, _ = build(row)
    out, diagnostics, _ = converted(text)
    assert [str(d) for d in diagnostics] == []
    assert row.directive in settings_of(out), out


# fmt: off
DROPPED = [
    # virtual_server
    Row("vs", "ha_suspend", warning="ha_suspend: not converted"),
    Row("vs", "smtp_alert", warning="smtp_alert: not converted"),
    Row("vs", "snmp_name web", warning="snmp_name: not converted"),
    Row("vs", "omega", warning="omega: not converted"),
    Row("vs", "quorum 2", warning="quorum: not converted"),
    Row("vs", "hysteresis 1", warning="hysteresis: not converted"),
    Row("vs", "quorum_up /bin/up", warning="quorum_up: not converted"),
    Row("vs", "quorum_down /bin/down", warning="quorum_down: not converted"),
    Row("vs", "persistence_engine sip", warning="persistence_engine: not converted"),
    Row("vs", "sorry_server_inhibit", warning="sorry_server_inhibit: not converted"),
    Row("vs", "nat_mask 255.255.255.0", warning="nat_mask: not converted"),
    Row("vs", "delay_before_retry 3", warning="delay_before_retry: not converted"),
    Row("vs", "warmup 5", warning="warmup: not converted"),
    Row("vs", "persistence_granularity 255.255.255.0", warning="it means nothing without"),
    Row("vs", "persistence_timeout 5\npersistence_granularity 255.0.255.0", warning="contiguous"),
    Row("vs", "ops", warning="ops: not converted: one-packet scheduling is UDP only"),
    Row("vs", "lvs_method TUN type gue port 6080", warning="ipip is used"),
    Row("vs", "lvs_method ROUTE", warning="not NAT, DR or TUN"),
    Row("vs", "lvs_sched Round-Robin", warning="not a scheduler; wlc is used"),
    Row("vs", "persistence_timeout forever", warning="not seconds"),
    Row("vs", "delay_loop soon", warning="delay_loop 'soon': not seconds"),
    Row("vs", "retry many", warning="retry 'many': not a count"),
    Row("vs", "virtualhost bad/name", warning="not a host name"),
    Row("vs", "sorry_server 2001:db8::9 80", warning="not in the service's address family"),
    Row("vs", "sorry_server nowhere 80", warning="not an address"),
    Row("vs", "frobnicate 3", warning="frobnicate: not a virtual_server setting"),
    # real_server
    Row("rs", "notify_up /bin/up", warning="notify_up: not converted"),
    Row("rs", "notify_down /bin/down", warning="notify_down: not converted"),
    Row("rs", "smtp_alert no", warning="smtp_alert: not converted"),
    Row("rs", "snmp_name rs", warning="snmp_name: not converted"),
    Row("rs", "delay_before_retry 1", warning="delay_before_retry: not converted"),
    Row("rs", "warmup 1", warning="warmup: not converted"),
    Row("rs", "weight -1", warning="not a weight; 1 is used"),
    Row("rs", "uthreshold lots", warning="not a connection count"),
    Row("rs", "wobble", warning="wobble: not a real_server setting"),
    # every checker
    Row("ck", "connect_ip 192.0.2.99", warning="connect_ip '192.0.2.99': not converted"),
    Row("ck", "bindto 192.0.2.1", warning="bindto: not converted"),
    Row("ck", "bind_if eth0", warning="bind_if: not converted"),
    Row("ck", "bind_port 999", warning="bind_port: not converted"),
    Row("ck", "fwmark 3", warning="fwmark: not converted"),
    Row("ck", "warmup 2", warning="warmup: not converted"),
    Row("ck", "delay_before_retry 2", warning="delay_before_retry: not converted"),
    Row("ck", "log_all_failures", warning="log_all_failures: not converted"),
    Row("ck", "connect_port 0", warning="connect_port '0': not a port"),
    Row("ck", "http_protocol 1.0", warning="http_protocol '1.0': not converted"),
    Row("ck", "fast_recovery", warning="fast_recovery: not converted"),
    Row("ck", "enable_sni", warning="enable_sni: not a HTTP_GET setting"),
    Row("checker", "HTTP_GET {\n url {\n }\n url {\n }\n }", warning="only the first url"),
    Row("url", "status_code 200", warning="status_code '200': not converted"),
    Row("url", "status_code 200-299 404", warning="status_code '200-299 404': not converted"),
    Row("url", "digest 9b3a0c85a887a256d6939da88aabd8cd", warning="digest: not converted"),
    Row("url", "regex_no_match", warning="regex_no_match: not converted in a url block"),
    Row("url", "regex_options caseless", warning="regex_options: not converted"),
    Row("url", "regex_stack 1 2", warning="regex_stack: not converted"),
    Row("url", "regex_min_offset 1", warning="regex_min_offset: not converted"),
    Row("url", "regex_max_offset 9", warning="regex_max_offset: not converted"),
    Row("url", 'regex ""', warning="regex '': cannot be written"),
    Row("url", "regex (unclosed", warning="not a regular expression"),
    Row("url", "path /a\\x", warning=None),  # a backslash is a plain character
    Row("checker", "HTTP_GET {\n }", warning="HTTP_GET without url: ldirector fetches /"),
    Row("checker", "MISC_CHECK {\n misc_path /bin/check 192.0.2.11\n }", warning="misc_path arg"),
    Row("checker", "MISC_CHECK {\n misc_path /bin/true\n misc_dynamic\n }", warning="misc_dynamic"),
    Row("checker", "MISC_CHECK {\n misc_path /bin/true\n user nobody\n }", warning="user: not"),
    Row("checker", "MISC_CHECK {\n misc_path /bin/true\n misc_timeout x\n }", warning="misc_t"),
    Row("checker", "MISC_CHECK {\n }", warning="MISC_CHECK without misc_path"),
    Row("checker", "DNS_CHECK {\n type WKS\n }", warning="type 'WKS': not a DNS record type"),
    Row("checker", "DNS_CHECK {\n name bad/name\n }", warning="not a DNS name", vs=UDP),
    Row("checker", "DNS_CHECK {\n }", warning="DNS_CHECK asks over UDP; ldirector asks a TCP"),
    Row("checker", "TCP_CHECK {\n }", warning="TCP_CHECK on a UDP service", vs=UDP),
    Row("checker", "SMTP_CHECK {\n helo_name lb.example.test\n }", warning="helo_name: not"),
    Row("checker", "SMTP_CHECK {\n host {\n bindto 192.0.2.1\n }\n }", warning="bindto: not"),
    Row("checker", "UDP_CHECK {\n }", warning="UDP_CHECK: not converted"),
    Row("checker", "BFD_CHECK {\n name x\n }", warning="BFD_CHECK: not converted"),
    Row("checker", "FILE_CHECK {\n track_file f\n }", warning="FILE_CHECK: not converted"),
    Row("checker", "TCP_CHECK {\n }\nPING_CHECK {\n }", warning=None),  # second: its own line
    # top level and global_defs
    Row("top", "vrrp_instance VI_1 {\n state MASTER\n}", warning="vrrp_instance: out of scope"),
    Row("top", "vrrp_sync_group G {\n group {\n VI_1\n }\n}", warning="vrrp_sync_group: out of"),
    Row("top", "vrrp_script chk {\n script /bin/true\n}", warning="vrrp_script: out of scope"),
    Row("top", "static_ipaddress {\n 192.0.2.1/24 dev eth0\n}", warning="static_ipaddress: out"),
    Row("top", "static_routes {\n}", warning="static_routes: out of scope"),
    Row("top", "static_rules {\n}", warning="static_rules: out of scope"),
    Row("top", "garp_group {\n}", warning="garp_group: out of scope"),
    Row("top", "linkbeat_interfaces {\n eth0\n}", warning="linkbeat_interfaces: out of scope"),
    Row("top", "bfd_instance b {\n}", warning="bfd_instance: out of scope"),
    Row("top", "track_file f {\n}", warning="track_file: out of scope"),
    Row("top", "SSL {\n ca /etc/ca.pem\n}", warning="SSL: not converted"),
    Row("top", "gizmo {\n}", warning="gizmo: not a keepalived section ldirector knows"),
    Row("top", "global_defs {\n router_id lb1\n}", warning="router_id: not converted"),
    Row("top", "global_defs {\n vrrp_garp_interval 0\n}", warning="vrrp_garp_interval: out of"),
    Row("top", "global_defs {\n smtp_server bad..host\n}", warning="smtp_server: not converted"),
    Row("top", "global_defs {\n notification_email {\n a@@b\n }\n}", warning="notif"),
]


# fmt: on


@pytest.mark.parametrize("row", DROPPED, ids=_id)
def test_unsupported_settings_are_reported_at_their_line(row: Row) -> None:
    text, line = build(row)
    out, diagnostics, _ = converted(text)
    assert all(d.severity is Severity.WARNING for d in diagnostics)
    assert all(d.span.file == "keepalived.conf" for d in diagnostics)
    assert "virtual=192.0.2.100:80" in out
    if row.warning is None:
        return
    last = line + row.lines.count("\n")
    found = [d.span.line for d in diagnostics if row.warning in d.message]
    assert found, [str(d) for d in diagnostics]
    assert line <= found[0] <= last, [str(d) for d in diagnostics]
    assert all(line <= d.span.line <= last for d in diagnostics), [str(d) for d in diagnostics]


# --- grammar: the file's own structure ----------------------------------------------------------


def warnings(text: str, path: str = "keepalived.conf") -> list[str]:
    return [str(d) for d in converted(text, path)[1]]


def test_one_line_blocks_comments_and_a_brace_on_the_next_line() -> None:
    text = (
        "virtual_server 192.0.2.1 80  # the web VIP\n"
        "{\n"
        "  protocol TCP ! keepalived's other comment\n"
        "  real_server 192.0.2.2 80 { weight 2 }\n"
        '  real_server 192.0.2.3 80 { MISC_CHECK { misc_path "/bin/true" } }\n'
        "}\n"
    )
    _, diagnostics, config = converted(text)
    assert diagnostics == [
        Diagnostic(
            Severity.WARNING,
            diagnostics[0].span,
            "real_server without a checker (keepalived keeps it up): ldirector checks it with "
            "the MISC_CHECK of this virtual's first checked real (keepalived.conf:5)",
        )
    ]
    assert diagnostics[0].span.line == 4
    assert [r.weight for r in config.virtuals[0].reals] == [2, 1]
    assert config.virtuals[0].checkcommand == "/bin/true"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("}\n", 1, "'}' without a block to close: ignored"),
        ("virtual_server 192.0.2.1 80 {\n protocol TCP\n", 1, "block of virtual_server is never"),
        ("{\n}\n", 1, "a block without a keyword: skipped"),
        ("@main router_id x\n", 1, "conditional line (@...)"),
        ("$IP=192.0.2.1\n", 1, "parameter definition ($NAME=...) is not supported"),
        ("virtual_server ${IP} 80 {\n}\n", 1, "parameter substitution"),
        ("virtual_server 192.0.2.1 80 {\n real_server ~SEQ(x,1,2) 80 {\n }\n}\n", 2, "~SEQ"),
        ("a\x01b\n", 1, "line holds control characters: skipped"),
        ("x" * 70000 + "\n", 1, "line too long (70000 characters; at most 65536): skipped"),
        ("include\n", 1, "include needs one file name: skipped"),
        ("include /etc/keepalived/*.conf\n", 1, "include of a pattern"),
        ("include {a,b}.conf\n", 1, "include of a pattern"),
        ("virtual_server 192.0.2.1 80\n", 1, "virtual_server without a name or a block"),
        ("virtual_server_group {\n}\n", 1, "virtual_server_group without a name or a block"),
    ],
)
def test_grammar_problems_are_reported_at_their_line(text: str, line: int, message: str) -> None:
    found = [(d.span.line, d.message) for d in converted(text)[1]]
    assert any(n == line and message in m for n, m in found), found


def test_nesting_deeper_than_the_bound_is_dropped_not_a_crash() -> None:
    text = "virtual_server 192.0.2.1 80 {\n" + "a {\n" * 40 + "}\n" * 40 + "}\n"
    found = warnings(text)
    assert any("blocks nested more than 32 deep" in w for w in found)


def test_includes_are_read_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "web.conf").write_text(
        "virtual_server 192.0.2.1 80 {\n protocol TCP\n real_server 192.0.2.2 80 {\n"
        " frob 1\n }\n}\ninclude ../more.conf\n"
    )
    (tmp_path / "more.conf").write_text("vrrp_instance V {\n}\n")
    main = tmp_path / "keepalived.conf"
    main.write_text("include conf.d/web.conf\ninclude missing.conf\ninclude keepalived.conf\n")
    out, diagnostics = convert_file(str(main))
    assert "virtual=192.0.2.1:80" in out
    assert [str(d) for d in diagnostics] == [
        f"{tmp_path}/conf.d/web.conf:4: warning: frob: not a real_server setting ldirector knows",
        f"{tmp_path}/more.conf:1: warning: vrrp_instance: out of scope: VRRP and keepalived's "
        "other networking stay keepalived's",
        f"{main}:2: warning: cannot read included file '{tmp_path}/missing.conf': No such file "
        "or directory",
        f"{main}:3: warning: include of 'keepalived.conf' includes itself: skipped",
    ]


def test_bytes_that_are_not_utf8_are_reported_never_written(tmp_path: Path) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_bytes(
        b"virtual_server 192.0.2.1 80 {\n protocol TCP\n real_server 192.0.2.2 80 {\n"
        b"  HTTP_GET {\n   url {\n    path /caf\xe9\n    regex \xff\n   }\n  }\n }\n}\n"
    )
    out, diagnostics = convert_file(str(source))
    assert [(d.span.line, d.message.split(":")[0]) for d in diagnostics] == [
        (6, "path '/caf?'"),
        (7, "regex '?'"),
    ]
    assert load_text(out).virtuals[0].request == "/"


def test_an_unreadable_file_is_one_error_and_no_text(tmp_path: Path) -> None:
    out, diagnostics = convert_file(str(tmp_path / "nope.conf"))
    assert out == ""
    assert [(d.severity, d.message) for d in diagnostics] == [
        (Severity.ERROR, "cannot read keepalived config: No such file or directory")
    ]
    out, diagnostics = convert_file(str(tmp_path))
    assert [d.message for d in diagnostics] == ["cannot read keepalived config: not a regular file"]


# --- virtual services: forms, groups, families, what cannot be expressed ------------------------


def test_groups_ranges_networks_and_marks() -> None:
    text = """\
virtual_server_group web {
    192.0.2.10-12 80
    192.0.2.20/31 8080
    2001:db8::1-2 80
    fwmark 7
    fwmark 8 inet6
    192.0.2.30
}
virtual_server group web {
    protocol TCP
    lvs_method DR
    real_server 192.0.2.50 80 {
        TCP_CHECK {
        }
    }
}
"""
    out, diagnostics, config = converted(text)
    assert [v.vid for v in config.virtuals] == [
        "tcp:192.0.2.10:80",
        "tcp:192.0.2.11:80",
        "tcp:192.0.2.12:80",
        "tcp:192.0.2.20:8080",
        "tcp:192.0.2.21:8080",
        "fwm:7",
    ]
    assert [(d.span.line, d.message) for d in diagnostics] == [
        (
            4,
            f"[2001:db8::{n}]:80: not converted: it is IPv6 and none of the virtual_server's "
            "reals is (ldirector keeps a service's reals in its family)",
        )
        for n in (1, 2)
    ] + [
        (
            6,
            "fwmark 8: not converted: it is IPv6 and none of the virtual_server's reals is "
            "(ldirector keeps a service's reals in its family)",
        ),
        (
            7,
            "virtual service '192.0.2.30': ldirector needs an address and a port (a service on "
            "every port cannot be expressed)",
        ),
    ]
    assert "virtual6=[2001:db8::1]:80" not in out
    # keepalived clears the port of a mark's reals, and still checks the port it was given.
    mark = config.virtuals[-1]
    assert ([r.port for r in mark.reals], mark.checkport) == ([0], 80)
    assert [r.port for r in config.virtuals[0].reals] == [80]


def test_ipv6_fwmark_and_the_forms_that_cannot_be_expressed() -> None:
    text = """\
virtual_server 2001:db8::100 443 {
    protocol TCP
    sorry_server 2001:db8::9 443
    real_server 2001:db8::11 443 {
        SSL_GET {
            url {
                path /
            }
        }
    }
    real_server 192.0.2.11 443 {
    }
}
virtual_server fwmark 3 {
    ip_family inet6
    real_server 2001:db8::12 {
        PING_CHECK {
        }
    }
}
virtual_server 192.0.2.100 {
    persistence_timeout 60
}
virtual_server 192.0.2.101 80 {
    protocol SCTP
}
virtual_server group nowhere {
}
virtual_server fwmark 0 {
}
virtual_server 192.0.2.102 80 {
    protocol TCP
}
virtual_server 192.0.2.102 80 {
    protocol TCP
}
"""
    out, diagnostics, config = converted(text)
    assert [v.vid for v in config.virtuals] == [
        "tcp:[2001:db8::100]:443",
        "fwm6:3",
        "tcp:192.0.2.102:80",
    ]
    assert "fallback6=[2001:db8::9]:443 masq" in settings_of(out)
    assert "real6=[2001:db8::12] masq 1" in settings_of(out)
    assert [d.span.line for d in diagnostics] == [11, 21, 25, 27, 29, 34]
    assert [d.message.split(":")[0] for d in diagnostics] == [
        "real_server 192.0.2.11",
        "virtual service '192.0.2.100'",
        "protocol 'SCTP'",
        "virtual_server group 'nowhere'",
        "virtual_server fwmark '0'",
        "virtual_server '192.0.2.102 80'",
    ]


def test_reals_checked_differently_are_reported_and_checked_alike() -> None:
    text = """\
virtual_server 192.0.2.1 80 {
    protocol TCP
    real_server 192.0.2.2 80 {
        HTTP_GET {
            url {
                path /a
                regex ok
            }
        }
    }
    real_server 192.0.2.3 80 {
        HTTP_GET {
            url {
                path /b
            }
        }
    }
    real_server 192.0.2.4 80 {
        HTTP_GET {
            url {
                path /a
            }
            connect_timeout 9
        }
    }
    real_server 192.0.2.5 80 {
        TCP_CHECK {
        }
    }
    real_server 192.0.2.2 80 {
    }
    real_server 192.0.2.6 80 {
        inhibit_on_failure
        HTTP_GET {
            url {
                path /a
                regex ok
            }
        }
    }
}
"""
    _, diagnostics, config = converted(text)
    reals = config.virtuals[0].reals
    # Another page of the same check is a per-real request and receive; ".*" is "any page".
    assert [(str(r.address), r.request, r.receive) for r in reals] == [
        ("192.0.2.2", None, None),
        ("192.0.2.3", "/b", ".*"),
        ("192.0.2.4", None, None),
        ("192.0.2.5", None, None),
        ("192.0.2.6", None, None),
    ]
    assert [(d.span.line, d.message.split(":")[0]) for d in diagnostics] == [
        (19, "HTTP_GET"),
        (27, "TCP_CHECK"),
        (30, "real_server 192.0.2.2"),
        (32, "inhibit_on_failure"),
    ]
    assert "negotiatetimeout" in diagnostics[0].message
    assert config.virtuals[0].quiescent is False


# --- hostile input ------------------------------------------------------------------------------

_WORDS = st.sampled_from(
    [
        "virtual_server",
        "real_server",
        "virtual_server_group",
        "group",
        "fwmark",
        "{",
        "}",
        "\n",
        "HTTP_GET",
        "SSL_GET",
        "TCP_CHECK",
        "MISC_CHECK",
        "DNS_CHECK",
        "url",
        "path",
        "regex",
        "misc_path",
        "192.0.2.1",
        "80",
        "2001:db8::1",
        "0",
        "-1",
        "99999",
        "weight",
        "lvs_method",
        "DR",
        "TUN",
        "sorry_server",
        "persistence_timeout",
        "include",
        '"',
        "#",
        "!",
        "/x",
        "protocol",
        "UDP",
        "ops",
        "192.0.2.1-300",
        "10.0.0.0/8",
        "type",
        "AAAA",
        "name",
        ".",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=80))
def test_any_sequence_of_keepalived_words_converts_to_a_valid_config(words: list[str]) -> None:
    out, diagnostics = convert(" ".join(words), "fuzz.conf", read=_no_includes)
    load_text(out)  # what it prints always passes check
    assert not [d for d in diagnostics if "fails check" in d.message]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_text_converts_without_an_exception(text: str) -> None:
    out, _ = convert(text, "fuzz.conf", read=_no_includes)
    load_text(out)


def _no_includes(path: str) -> str:
    raise FileNotFoundError(2, "No such file or directory")


# --- the golden corpus ---------------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(CORPUS.glob("*.conf")), ids=lambda p: p.name)
def test_corpus(source: Path) -> None:
    out, diagnostics = convert_file(str(source))
    rel = [str(d).replace(str(CORPUS) + "/", "") for d in diagnostics]
    expected_cf = source.with_suffix(".cf").read_text()
    expected_warnings = source.with_suffix(".warnings").read_text().splitlines()
    assert out.replace(str(CORPUS) + "/", "") == expected_cf
    assert rel == expected_warnings
    load_text(out)
