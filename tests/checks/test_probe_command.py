"""``ldirector check --probe``: the plan of first checks and the report, against real servers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import servers
from servers import DNS_ADDRESS, DNS_NAME, Nginx

from checks.types import ConnectSpec, ExternalSpec, HttpSpec, PingSpec, SimpleTcpSpec
from ldirector import plan, probe
from ldirector.config import loads
from ldirector.config.model import Config


def config(text: str) -> Config:
    return loads(text, "probe.cf", host="director")


def one(cfg: Config) -> plan.Probe | None:
    virtual = cfg.virtuals[0]
    return plan.first_probe(virtual, virtual.reals[0])


BASE = "checktimeout=3\nnegotiatetimeout=7\nvirtual=127.0.0.100:80\n\treal=127.0.0.1:80 gate\n"


def test_negotiate_uses_the_service_and_negotiatetimeout() -> None:
    p = one(config(BASE + "\tservice=http\n\trequest=/x\n\treceive=ok\n"))
    assert p is not None
    assert (p.label, p.timeout) == ("negotiate http", 7)
    assert isinstance(p.spec, HttpSpec)
    assert p.spec.request == "/x"


def test_combined_starts_with_a_negotiate() -> None:
    p = one(config(BASE + "\tservice=http\n\tchecktype=3\n"))
    assert p is not None
    assert (p.label, p.timeout, type(p.spec)) == ("negotiate http", 7, HttpSpec)


def test_connect_on_tcp_and_udp() -> None:
    tcp = one(config(BASE + "\tchecktype=connect\n"))
    assert tcp == plan.Probe("connect", ConnectSpec(), 3)
    udp = one(
        config(
            "checktimeout=2\ncheckcount=3\nvirtual=127.0.0.100:53\n\treal=127.0.0.1:53 gate\n"
            "\tprotocol=udp\n\tchecktype=connect\n"
        )
    )
    assert udp is not None
    assert udp.label == "connect (ping: udp)"
    assert isinstance(udp.spec, PingSpec)
    assert udp.timeout == 3 * 2 + plan.PING_SLACK


def test_ping_counts_attempts() -> None:
    p = one(config(BASE + "\tchecktype=ping\n\tcheckcount=4\n"))
    assert p is not None
    assert p.spec == PingSpec(count=4, attempt_timeout=3)
    assert p.timeout == 12 + plan.PING_SLACK


def test_external_and_external_perl() -> None:
    ext = one(config(BASE + "\tchecktype=external\n\tcheckcommand=/usr/local/bin/chk\n"))
    assert ext == plan.Probe("external", ExternalSpec(command="/usr/local/bin/chk"), 3)
    perl = one(config(BASE + "\tchecktype=external-perl\n\tcheckcommand=/x.pl\n"))
    assert perl == plan.Probe("external-perl", ExternalSpec(command="/x.pl", perl=True), 3)


@pytest.mark.parametrize("checktype", ["on", "off"])
def test_on_and_off_are_not_probed(checktype: str) -> None:
    assert one(config(BASE + f"\tchecktype={checktype}\n")) is None


def test_simpletcp_request_arrives_as_sent() -> None:
    p = one(config(BASE + '\tservice=simpletcp\n\trequest="/PING\\n"\n\treceive=PONG\n'))
    assert p is not None
    assert isinstance(p.spec, SimpleTcpSpec)
    assert p.spec.request == "PING\n"


@pytest.mark.daemon
def test_probe_table_and_json_against_real_servers(
    nginx: Nginx, dnsmasq: int, tmp_path: Path
) -> None:
    refused = servers.free_port()
    script = tmp_path / "check.sh"
    script.write_text('#!/bin/sh\necho "checked $3:$4"\n')
    script.chmod(0o755)
    text = f"""
checktimeout=2
negotiatetimeout=2
virtual=127.0.0.100:80
\treal=127.0.0.1:{nginx.http} masq
\treal=127.0.0.1:{refused} masq
\tservice=http
\trequest=/
\treceive=Test Page
virtual6=[::1]:80
\treal6=[::1]:{nginx.http} masq
\tservice=http
\treceive=Test Page
virtual=127.0.0.100:53
\treal=127.0.0.1:{dnsmasq} masq
\tprotocol=tcp
\tservice=dns
\trequest={DNS_NAME}
\treceive={DNS_ADDRESS}
virtual=127.0.0.100:25
\treal=127.0.0.1:{nginx.http} masq
\tchecktype=external
\tcheckcommand={script}
virtual=127.0.0.100:26
\treal=127.0.0.1:{nginx.http} masq
\tchecktype=off
"""
    cfg = config(text)
    out = io.StringIO()
    assert probe.main(cfg, out=out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["VIRTUAL", "REAL", "CHECK", "STATE", "TIME", "REASON"]
    body = [line.split(None, 6) for line in lines[1:]]
    assert [row[:5] for row in body] == [
        ["tcp:127.0.0.100:80", f"127.0.0.1:{nginx.http}", "negotiate", "http", "up"],
        ["tcp:127.0.0.100:80", f"127.0.0.1:{refused}", "negotiate", "http", "down"],
        ["tcp:[::1]:80", f"[::1]:{nginx.http}", "negotiate", "http", "up"],
        ["tcp:127.0.0.100:53", f"127.0.0.1:{dnsmasq}", "negotiate", "dns", "up"],
        ["tcp:127.0.0.100:25", f"127.0.0.1:{nginx.http}", "external", "up", body[4][4]],
        ["tcp:127.0.0.100:26", f"127.0.0.1:{nginx.http}", "off", "(not", "probed)"],
    ]
    assert lines[2].endswith("connection refused")
    assert lines[5].endswith(f"exit 0: checked 127.0.0.1:{nginx.http}")

    out = io.StringIO()
    assert probe.main(cfg, json_output=True, out=out) == 0
    doc = json.loads(out.getvalue())
    assert doc["config"] == "probe.cf"
    assert [p["up"] for p in doc["probes"]] == [True, False, True, True, True, None]
    assert doc["probes"][3]["reason"] == f"A {DNS_ADDRESS}"
    assert all(p["seconds"] is None or p["seconds"] < 2 for p in doc["probes"])


async def test_identical_probes_are_shared() -> None:
    port = servers.free_port()
    text = "".join(
        f"virtual=127.0.0.100:{vport}\n\treal=127.0.0.1:{port} gate\n\tchecktype=connect\n"
        for vport in (81, 82)
    )
    rows = await probe.run(config(text))
    assert [row.virtual for row in rows] == ["tcp:127.0.0.100:81", "tcp:127.0.0.100:82"]
    assert rows[0].result is rows[1].result  # one probe, two rows
    assert rows[0].result is not None
    assert rows[0].result.reason == "connection refused"


def test_cli_check_probe_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ldirector import cli

    good = tmp_path / "good.cf"
    good.write_text(f"virtual=127.0.0.100:80\n\treal=127.0.0.1:{servers.free_port()} gate\n")
    assert cli.main(["check", "--probe", str(good)]) == 0  # the real is down; the probe ran
    out = capsys.readouterr().out
    assert "connection refused" in out
    assert cli.main(["check", "--probe", "--json", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["probes"][0]["up"] is False
    bad = tmp_path / "bad.cf"
    bad.write_text("virtual=127.0.0.100\n\treal=nowhere gate\n")
    assert cli.main(["check", "--probe", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{bad}:1: error:")


def test_probe_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    from ldirector import cli
    from ldirector.config import load

    example = Path(__file__).resolve().parents[2] / "examples" / "ldirectord.cf"
    reals = sum(len(v.reals) for v in load(example).virtuals)
    assert cli.main(["check", "--probe", str(example)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["VIRTUAL", "REAL", "CHECK"]
    assert len(lines) == 2 + reals
