"""build: valid configs and the effective model each gives.

Table-driven: for each fixture, the attributes listed for each virtual and real must equal the
expected values; attributes not listed are covered by other rows.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, ip_address
from typing import Any

import pytest

import ldirector.config.build as build_module
from checks.types import (
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
    PgsqlSpec,
    PingSpec,
    PopSpec,
    RadiusSpec,
    SimpleTcpSpec,
    SipSpec,
    SmtpSpec,
    Target,
    Transport,
)
from ldirector.config import (
    CheckService,
    CheckType,
    ConfigError,
    DaemonState,
    Fallback,
    Forward,
    MailAddress,
    ServiceProtocol,
    Severity,
    SmtpServer,
)
from tests.unit.config.cfgtools import HOSTNAME, TESTDATA, load_fixture, load_text

A = ip_address
TEST_PAGE = re.compile("Test Page")

EXPECT: dict[str, dict[str, Any]] = {
    "http-globals.cf": {
        "warnings": [],
        "config": {"autoreload": True, "checkinterval": 1.0},
        "virtuals": [
            {
                "vid": "tcp:192.168.6.240:80",
                "span.line": 10,
                "protocol": ServiceProtocol.TCP,
                "family": 4,
                "address": A("192.168.6.240"),
                "port": 80,
                "fwmark": None,
                "scheduler": "rr",
                "service": CheckService.HTTP,
                "checktype": CheckType.NEGOTIATE,
                "checktimeout": 3.0,
                "negotiatetimeout": 3.0,  # global checktimeout=3 alone sets both
                "checkinterval": 1.0,
                "quiescent": False,
                "cleanstop": True,
                "servicename": "Web Site",
                "comment": "Test load balanced web site",
                "fallback": Fallback(address=A("127.0.0.1"), port=80, forward=Forward.GATE),
                "reals": [
                    {
                        "address": A(f"192.168.6.{n}"),
                        "port": 80,
                        "forward": Forward.GATE,
                        "weight": 1,
                        "target": Target(
                            address=A(f"192.168.6.{n}"),
                            port=80,
                            virtual="192.168.6.240",
                            virtual_port=80,
                            real_port=80,
                        ),
                        "negotiate": HttpSpec(
                            request="/index.html", receive=TEST_PAGE, virtualhost="www.x.y.z"
                        ),
                    }
                    for n in (2, 3, 6)
                ],
            }
        ],
    },
    "fwmark-range.cf": {
        "virtuals": [
            {
                "vid": "fwm:1",
                "protocol": ServiceProtocol.FWM,
                "address": None,
                "port": 0,
                "fwmark": 1,
                "fallback": Fallback(address=A("127.0.0.1"), port=80),
                "reals": [
                    {
                        "port": 0,
                        "target": Target(address=A(f"192.168.6.{n}"), port=80, virtual="1"),
                    }
                    for n in (2, 3, 6)
                ],
            },
            {
                "vid": "tcp:192.168.6.240:80",
                "reals.address": [A(f"192.168.6.{n}") for n in (2, 3, 4, 5, 6, 7, 32)],
            },
            {"reals.address": [A(f"192.168.6.{n}") for n in (8, 9, 10, 11)]},
        ]
    },
    "mysql-dns.cf": {
        "virtuals": [
            {
                "vid": "tcp:192.168.10.74:3306",
                "service": CheckService.MYSQL,
                "scheduler": "wrr",
                "fallback": Fallback(address=A("127.0.0.1"), port=3306),
                "reals": [
                    {
                        "address": A(f"10.1.0.{n}"),
                        "weight": 10,
                        "negotiate": MysqlSpec(
                            login="readuser",
                            passwd="genericpassword",
                            database="portal",
                            query="SELECT * FROM link",
                        ),
                    }
                    for n in (1, 2, 3)
                ],
            },
            {
                "vid": "udp:192.168.84.5:53",
                "protocol": ServiceProtocol.UDP,
                "service": CheckService.DNS,
                "scheduler": "wlc",
                "reals": [
                    {
                        "forward": Forward.MASQ,
                        "target": Target(
                            address=A(f"10.0.1.{n}"),
                            port=53,
                            transport=Transport.UDP,
                            virtual="192.168.84.5",
                            virtual_port=53,
                            real_port=53,
                        ),
                        "negotiate": DnsSpec(query="x.y.z", receive=re.compile("127.0.0.1")),
                    }
                    for n in (4, 6)
                ],
            },
        ]
    },
    "ipv6-ping-external.cf": {
        "warnings": [(22, "quiescent=yes with persistent")],
        "virtuals": [
            {
                "vid": "tcp:[2001:db8::5]:119",
                "family": 6,
                "service": CheckService.NNTP,
                "fallback": Fallback(address=A("::1"), port=119),
                "reals": [
                    {
                        "address": A("2001:db8:0:1::4"),
                        "forward": Forward.MASQ,
                        "target": Target(
                            address=A("2001:db8:0:1::4"),
                            port=119,
                            virtual="[2001:db8::5]",
                            virtual_port=119,
                            real_port=119,
                        ),
                        "negotiate": NntpSpec(),
                    },
                    {"address": A("2001:db8:0:1::6")},
                ],
            },
            {
                "vid": "udp:192.168.6.240:53",
                "protocol": ServiceProtocol.UDP,
                "checktype": CheckType.PING,
                "failurecount": 3,
                "service": CheckService.DNS,
                "reals": [{"check": PingSpec(count=1, attempt_timeout=5.0)}] * 2,
            },
            {
                "vid": "tcp:10.0.0.100:80",
                "checktype": CheckType.EXTERNAL,
                "quiescent": True,
                "persistent": 300,
                "netmask": IPv4Address("255.255.255.0"),
                "monitorfile": "/tmp/ldirector-web.monitor",
                "reals": [
                    {
                        "weight": 10,
                        "check": ExternalSpec(command="/usr/local/bin/check-web"),
                        "target": Target(
                            address=A("10.0.0.1"),
                            port=80,
                            virtual="10.0.0.100",
                            virtual_port=80,
                            real_port=80,
                        ),
                    },
                    {"weight": 20, "port": 8080, "forward": Forward.MASQ},
                ],
            },
        ],
    },
    "robustness.cf": {
        "virtuals": [
            {
                "checktimeout": 4.0,
                "quiescent": True,
                "cleanstop": False,
                "service": CheckService.FTP,
                "request": "/index.html#top",
                "receive": "a#b",
                "passwd": "p#ss word",
                "reals": [
                    {
                        "weight": 2,
                        "lower": 3,
                        "upper": 9,
                        "request": "/health#frag",
                        "receive": "OK #1",
                        "negotiate": FtpSpec(
                            login="user",
                            passwd="p#ss word",
                            request="/health#frag",
                            receive=re.compile("OK #1"),
                        ),
                    }
                ],
            }
        ]
    },
    "timeouts.cf": {
        "virtuals": [
            {"checktimeout": 4.0, "negotiatetimeout": 4.0},
            {"checktimeout": 7.0, "negotiatetimeout": 7.0},
            {"checktimeout": 12.0, "negotiatetimeout": 12.0, "checkinterval": 3.0},
            {"checktimeout": 2.5, "negotiatetimeout": 9.0, "checkcount": 3, "failurecount": 2},
        ]
    },
    "timeouts-global-check.cf": {
        "config": {"resyncinterval": 10.0, "httpstatus": None},
        "virtuals": [{"checktimeout": 3.0, "negotiatetimeout": 3.0, "failurecount": 4}],
    },
    "services.cf": {
        "virtuals": [
            {  # FTP defaults apply although service= is inferred from the port
                "service": CheckService.FTP,
                "reals.negotiate": [FtpSpec(login="anonymous", passwd=f"ldirectord@{HOSTNAME}")],
            },
            {
                "service": CheckService.SIP,
                "protocol": ServiceProtocol.UDP,
                "reals": [
                    {
                        "negotiate": SipSpec(login=f"ldirectord@{HOSTNAME}"),
                        "target": Target(
                            address=A("127.0.0.2"),
                            port=5060,
                            transport=Transport.UDP,
                            virtual="127.0.0.1",
                            virtual_port=5060,
                        ),
                    }
                ],
            },
            {
                "service": CheckService.HTTPS,
                "reals.negotiate": [
                    HttpSpec(
                        tls=True,
                        request="https://www.example.test/status",
                        receive=re.compile("^ok$"),
                        method=HttpMethod.HEAD,
                        verify_tls=True,
                    )
                ],
            },
            {
                "service": CheckService.HTTP_PROXY,
                "reals.negotiate": [HttpSpec(proxy=True, request="http://www.example.test/")],
            },
            {
                "service": CheckService.DNS,
                "protocol": ServiceProtocol.TCP,
                "reals.negotiate": [
                    DnsSpec(query="example.test", receive=re.compile(r"192\.0\.2\."), tcp=True)
                ],
            },
            {
                "service": CheckService.SIMPLETCP,
                "checkport": 7001,
                "reals": [
                    {
                        "port": 0,
                        "target.port": 7001,
                        "negotiate": SimpleTcpSpec(
                            request="PING\nQUIT", receive=re.compile("^PONG")
                        ),
                    }
                ],
            },
            {
                "service": CheckService.LDAP,
                "reals": [
                    {
                        "target.port": 389,
                        "negotiate": LdapSpec(
                            base="dc=example,dc=test", login="cn=admin", passwd="secret"
                        ),
                    }
                ],
            },
            {"service": CheckService.POPS, "reals.negotiate": [PopSpec(tls=True)]},
            {"service": CheckService.IMAPS, "reals.negotiate": [ImapSpec(tls=True, login="u")]},
            {"service": CheckService.SUBMISSION, "reals.negotiate": [SmtpSpec()]},
            {
                "service": CheckService.RADIUS,
                "reals.negotiate": [RadiusSpec(login="probe", passwd="pw", secret="s3")],
            },
            {  # an unknown port gets service none: never checked, as ldirectord does
                "service": CheckService.NONE,
                "reals.negotiate": [NoneSpec()],
            },
            {"checktype": CheckType.CONNECT, "reals.check": [ConnectSpec()]},
            {  # connect on UDP pings instead
                "checktype": CheckType.CONNECT,
                "reals.check": [PingSpec(count=2, attempt_timeout=3.0)],
            },
            {
                "checktype": CheckType.EXTERNAL_PERL,
                "reals.check": [ExternalSpec(command="/usr/local/lib/check.pl", perl=True)],
            },
            {"checktype": CheckType.ON, "reals.check": [NoneSpec()]},
            {"checktype": CheckType.OFF, "reals.check": [None]},
            {
                "checktype": CheckType.COMBINED,
                "combined_connects": 3,
                "reals.check": [HttpSpec()],
                "reals.connect": [ConnectSpec()],
            },
            {"checktype": CheckType.NEGOTIATE, "combined_connects": 0},
            {
                "service": CheckService.PGSQL,
                "reals.negotiate": [PgsqlSpec(login="monitor", database="app", query="SELECT 1")],
            },
            {"service": CheckService.POP, "reals.negotiate": [PopSpec()]},
        ]
    },
    "fallbacks-sysctls.cf": {
        "config": {
            "ipvs_sysctls": (
                ("conn_reuse_mode", 2),
                ("conntrack", 1),
                ("expire_nodest_conn", 0),
                ("expire_quiescent_template", 1),
                ("sloppy_tcp", 1),
            ),
            "fork": True,
            "supervised": True,
            "readdquiescent": True,
            "logfile": "daemon",
            "logs_to_syslog": True,
            "execute": ("second.cf", "third.cf"),
            "callback": "/usr/local/bin/on-change",
            "emailalertfrom": MailAddress("lvs", "example.test"),
            "checkinterval": 5.0,
            "resyncinterval": 2.5,  # ldirector extension
            "httpstatus": ("::1", 9555),  # ldirector extension
        },
        "virtuals": [
            {
                "vid": "tcp:127.0.0.1:80",
                "checkinterval": 2.0,
                "persistent": 600,
                "netmask": IPv4Address("255.255.255.0"),
                "schedflags": ("sh-fallback", "sh-port"),
                "scheduler": "sh",
                "quiescent": True,
                "cleanstop": False,
                "emailalert": (
                    MailAddress("ops", "example.test"),
                    MailAddress("oncall", "example.test"),
                ),
                "emailalertfreq": 3600,
                "emailalertstatus": (DaemonState.STARTING, DaemonState.RUNNING),
                "smtp": SmtpServer("mail.example.test", 25),
                # Global: kept verbatim by ldirectord for its shell, which strips the quotes.
                "fallbackcommand": ("/usr/local/bin/all-down",),
                "fallback": Fallback(address=A("127.0.0.9"), port=80),
                "reals.port": [80],
            },
            {
                "vid": "fwm:100",
                "checkinterval": 5.0,
                "emailalert": (MailAddress("web", "example.test"),),
                "emailalertstatus": (),
                "fallbackcommand": ("/usr/local/bin/mark-down",),
                "fallback": Fallback(address=A("127.0.0.9"), port=0),
            },
            {
                "vid": "tcp:[2001:db8::1]:443",
                "netmask": 64,
                "fallback": Fallback(address=A("::1"), port=8080, forward=Forward.MASQ),
            },
            {
                "vid": "fwm6:200",
                "fallback": Fallback(address=A("::1"), port=0),
                "reals.target": [Target(address=A("2001:db8::3"), port=0, virtual="200")],
            },
            {
                "vid": "udp:127.0.0.1:53",
                "ops": True,
                "netmask": None,
                "fallback": Fallback(address=A("127.0.0.9"), port=53, forward=Forward.MASQ),
            },
            {
                "vid": "tcp:127.0.0.1:8081",
                "servicename": "Demo",
                "comment": "A comment, with#hash",
                "load": "1",
                "smtp": SmtpServer("other.example.test", 2525),
                "reals.address": [A("127.0.0.1"), A("127.0.0.2"), A("127.0.0.3")],
                "reals.weight": [0, 0, 0],
            },
        ],
    },
    "mail.cf": {
        "config": {"emailalertfrom": MailAddress("lvs", "example.test", "LVS, Ops")},
        "virtuals": [
            {
                "smtp": SmtpServer("::1", 25),
                "emailalert": (
                    MailAddress("ops", "example.test", "Ops Team"),
                    MailAddress("root"),
                    MailAddress("oncall", "example.test", "On, Call"),
                ),
                "fallbackcommand": ("/usr/local/bin/all-down", "two words", "--quiet"),
            },
            {
                "smtp": SmtpServer("localhost", 25),
                "emailalert": (MailAddress("web", "example.test"),),
                "fallbackcommand": ("/usr/local/bin/web-down", "--now"),
            },
            {
                "smtp": SmtpServer("2001:db8::25", 2525),
                "emailalert": (MailAddress("web", "[127.0.0.1]"),),
            },
        ],
    },
}


def _get(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _check(obj: object, want: dict[str, Any], where: str) -> None:
    for key, value in want.items():
        if key == "reals":
            reals = _get(obj, "reals")
            assert isinstance(reals, tuple)
            assert len(reals) == len(value), f"{where}: number of reals"
            for i, (real, rwant) in enumerate(zip(reals, value, strict=True)):
                _check(real, rwant, f"{where} real {i}")
        elif key.startswith("reals."):
            reals = _get(obj, "reals")
            assert isinstance(reals, tuple)
            got = [_get(r, key[len("reals.") :]) for r in reals]
            assert got == value, f"{where}: {key}"
        else:
            assert _get(obj, key) == value, f"{where}: {key}"


def test_every_valid_fixture_has_expectations() -> None:
    assert sorted(p.name for p in (TESTDATA / "valid").glob("*.cf")) == sorted(EXPECT)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_valid_fixture_gives_expected_model(name: str) -> None:
    config = load_fixture(TESTDATA / "valid" / name)
    want = EXPECT[name]
    _check(config, want.get("config", {}), name)
    assert len(config.virtuals) == len(want["virtuals"])
    for i, (virtual, vwant) in enumerate(zip(config.virtuals, want["virtuals"], strict=True)):
        _check(virtual, vwant, f"{name} virtual {i}")
    warnings = [(w.span.line, w.message) for w in config.warnings]
    if "warnings" in want:
        assert len(warnings) == len(want["warnings"])
        for (line, message), (wline, wtext) in zip(warnings, want["warnings"], strict=True):
            assert line == wline and wtext in message


def test_invalid_receive_with_head_is_one_error_at_the_receive_line() -> None:
    """An invalid receive left its text behind without its line: HEAD then crashed the loader."""
    text = 'virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\treceive="("\n\thttpmethod=head\n'
    with pytest.raises(ConfigError) as info:
        load_text(text)
    (only,) = info.value.diagnostics
    assert (only.span.line, only.severity) == (3, Severity.ERROR)
    assert only.message.startswith("invalid receive string: not a regular expression")


def test_a_bug_while_building_a_virtual_is_an_error_at_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(build_module, "negotiate_spec", broken)
    with pytest.raises(ConfigError) as info:
        load_text("checkinterval=5\nvirtual6=[::1]:80\n\treal6=[::1]:81 gate\n")
    (only,) = info.value.diagnostics
    assert (only.span.line, only.severity) == (2, Severity.ERROR)
    assert only.message == "internal error while reading virtual6: KeyError: 'surprise'"
