"""Planning: which check each real gets, with which timeout, and which reals share one."""

from __future__ import annotations

import pytest

from checks.types import ConnectSpec, ExternalSpec, HttpSpec, PingSpec, SimpleTcpSpec
from ldirector.config import loads
from ldirector.config.model import Config
from ldirector.core.plan import PING_SLACK, Job, job_for, plan
from tests.support.engine_world import config

FWM = """\
fallbackcommand=/bin/echo "two words"

virtual=100
	real=127.0.0.2 gate
	checktype=connect
	checkport=80

virtual=127.0.0.100:53
	protocol=udp
	real=127.0.0.3:53 masq
	checktype=ping
	checkcount=3
	checktimeout=2
"""


def test_probe_timeouts_follow_ldirectord() -> None:
    # A virtual's own checkinterval counts, fork=yes or not (ldirectord ignores it without).
    text = """\
checktimeout=4
negotiatetimeout=20

virtual=127.0.0.100:80
	real=127.0.0.2:80 masq
	service=http
	checkinterval=7

virtual=127.0.0.101:80
	real=127.0.0.2:80 masq
	checktype=connect

virtual=127.0.0.102:80
	real=127.0.0.2:80 masq
	service=http
	checktype=3
"""
    negotiate, connect, combined = (job_for(v, v.reals[0]) for v in config(text).virtuals)
    assert negotiate and isinstance(negotiate.spec, HttpSpec)
    assert (negotiate.timeout, negotiate.interval) == (20, 7)
    assert connect and connect.spec == ConnectSpec() and connect.timeout == 4
    assert combined and combined.combined == 3
    assert (combined.timeout, combined.connect_timeout) == (20, 4)
    _, ping = config(FWM).virtuals
    probe = job_for(ping, ping.reals[0])
    assert (
        probe and isinstance(probe.spec, PingSpec) and probe.timeout == 6.5
    )  # 3 attempts x 2 s, and slack


def test_identical_checks_share_a_probe_only_when_identical() -> None:
    text = """\
virtual=127.0.0.100:110
	real=127.0.0.2:110 masq
	service=pop
	login="alice"
	passwd="one"

virtual=127.0.0.101:110
	real=127.0.0.2:110 masq
	service=pop
	login="alice"
	passwd="two"

virtual=127.0.0.102:110
	real=127.0.0.2:110 masq
	service=pop
	login="alice"
	passwd="one"
"""
    job_of, readers = plan(config(text))
    assert len(job_of) == 3 and len(readers) == 2  # different passwords, different probes
    shared = next(keys for keys in readers.values() if len(keys) == 2)
    assert {str(k.service) for k in shared} == {"tcp:127.0.0.100:110", "tcp:127.0.0.102:110"}


def probe_config(text: str) -> Config:
    return loads(text, "probe.cf", host="director")


def one(cfg: Config) -> Job | None:
    virtual = cfg.virtuals[0]
    return job_for(virtual, virtual.reals[0])


BASE = "checktimeout=3\nnegotiatetimeout=7\nvirtual=127.0.0.100:80\n\treal=127.0.0.1:80 gate\n"


def test_negotiate_uses_the_service_and_negotiatetimeout() -> None:
    p = one(probe_config(BASE + "\tservice=http\n\trequest=/x\n\treceive=ok\n"))
    assert p is not None
    assert (p.label, p.timeout) == ("negotiate http", 7)
    assert isinstance(p.spec, HttpSpec)
    assert p.spec.request == "/x"


def test_combined_starts_with_a_negotiate() -> None:
    p = one(probe_config(BASE + "\tservice=http\n\tchecktype=3\n"))
    assert p is not None
    assert (p.label, p.timeout, type(p.spec)) == ("negotiate http", 7, HttpSpec)


def test_connect_on_tcp_and_udp() -> None:
    tcp = one(probe_config(BASE + "\tchecktype=connect\n"))
    assert tcp is not None
    assert (tcp.label, tcp.spec, tcp.timeout) == ("connect", ConnectSpec(), 3)
    udp = one(
        probe_config(
            "checktimeout=2\ncheckcount=3\nvirtual=127.0.0.100:53\n\treal=127.0.0.1:53 gate\n"
            "\tprotocol=udp\n\tchecktype=connect\n"
        )
    )
    assert udp is not None
    assert udp.label == "connect (ping: udp)"
    assert isinstance(udp.spec, PingSpec)
    assert udp.timeout == 3 * 2 + PING_SLACK


def test_ping_counts_attempts() -> None:
    p = one(probe_config(BASE + "\tchecktype=ping\n\tcheckcount=4\n"))
    assert p is not None
    assert p.spec == PingSpec(count=4, attempt_timeout=3)
    assert p.timeout == 12 + PING_SLACK


def test_external_and_external_perl() -> None:
    ext = one(probe_config(BASE + "\tchecktype=external\n\tcheckcommand=/usr/local/bin/chk\n"))
    assert ext is not None
    assert (ext.label, ext.spec, ext.timeout) == (
        "external",
        ExternalSpec(command="/usr/local/bin/chk"),
        3,
    )
    perl = one(probe_config(BASE + "\tchecktype=external-perl\n\tcheckcommand=/x.pl\n"))
    assert perl is not None
    assert (perl.label, perl.spec, perl.timeout) == (
        "external-perl",
        ExternalSpec(command="/x.pl", perl=True),
        3,
    )


@pytest.mark.parametrize("checktype", ["on", "off"])
def test_on_and_off_are_not_probed(checktype: str) -> None:
    assert one(probe_config(BASE + f"\tchecktype={checktype}\n")) is None


def test_simpletcp_request_arrives_as_sent() -> None:
    p = one(probe_config(BASE + '\tservice=simpletcp\n\trequest="/PING\\n"\n\treceive=PONG\n'))
    assert p is not None
    assert isinstance(p.spec, SimpleTcpSpec)
    assert p.spec.request == "PING\n"
