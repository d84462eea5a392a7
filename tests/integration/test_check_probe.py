"""``ldirector check --probe`` (and ``--plan``) against real servers: the report, shared
checks, exit codes, and one request per real whatever the reports asked for."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from ldirector.cli import check
from ldirector.config import loads
from ldirector.config.model import Config
from tests.support import REPO
from tests.support.daemons_web import DNS_ADDRESS, DNS_NAME, Nginx
from tests.support.servers import free_port


def config(text: str) -> Config:
    return loads(text, "probe.cf", host="director")


@pytest.mark.daemon
def test_probe_table_and_json_against_real_servers(
    nginx: Nginx, dnsmasq: int, tmp_path: Path
) -> None:
    refused = free_port()
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
    assert check.main(cfg, probe=True, plan=False, out=out) == 1  # reals down: the refused one
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
    assert check.main(cfg, probe=True, plan=False, json_output=True, out=out) == 1
    doc = json.loads(out.getvalue())
    assert doc["config"] == "probe.cf"
    assert [p["up"] for p in doc["probes"]] == [True, False, True, True, True, None]
    assert doc["probes"][3]["reason"] == f"A {DNS_ADDRESS}"
    assert all(p["seconds"] is None or p["seconds"] < 2 for p in doc["probes"])


async def test_identical_probes_are_shared() -> None:
    port = free_port()
    text = "".join(
        f"virtual=127.0.0.100:{vport}\n\treal=127.0.0.1:{port} gate\n\tchecktype=connect\n"
        for vport in (81, 82)
    )
    cfg = config(text)
    rnd = await check.one_round(cfg, None)
    rows = check.rows(cfg, rnd.results)
    assert [row.virtual for row in rows] == ["tcp:127.0.0.100:81", "tcp:127.0.0.100:82"]
    assert rows[0].result is rows[1].result  # one probe, two rows
    assert rows[0].result is not None
    assert rows[0].result.reason == "connection refused"


def test_cli_check_probe_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ldirector.cli import main

    good = tmp_path / "good.cf"
    good.write_text(f"virtual=127.0.0.100:80\n\treal=127.0.0.1:{free_port()} gate\n")
    assert main.main(["check", "--probe", str(good)]) == 0  # the real is down; the probe ran
    out = capsys.readouterr().out
    assert "connection refused" in out
    assert main.main(["check", "--probe", "--json", str(good)]) == 0
    assert json.loads(capsys.readouterr().out)["probes"][0]["up"] is False
    # For scripts and monitoring: a down real fails the command, the report is the same.
    assert main.main(["check", "--fail-if-down", str(good)]) == 1
    assert "connection refused" in capsys.readouterr().out
    assert main.main(["check", "--fail-if-down", "--json", str(good)]) == 1
    assert json.loads(capsys.readouterr().out)["probes"][0]["up"] is False
    bad = tmp_path / "bad.cf"
    bad.write_text("virtual=127.0.0.100\n\treal=nowhere gate\n")
    assert main.main(["check", "--probe", str(bad)]) == 2
    assert main.main(["check", "--fail-if-down", str(bad)]) == 2
    capsys.readouterr()
    assert main.main(["check", "--probe", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{bad}:1: error:")


def test_probe_the_shipped_example(capsys: pytest.CaptureFixture[str]) -> None:
    from ldirector.cli import main
    from ldirector.config import load

    example = REPO / "examples" / "ldirectord.cf"
    reals = sum(len(v.reals) for v in load(example).virtuals)
    assert main.main(["check", "--probe", str(example)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["VIRTUAL", "REAL", "CHECK"]
    assert len(lines) == 2 + reals


class Counting(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.hits.append(self.client_address[0])
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[int]:
    Counting.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_probe_and_plan_send_one_request_per_real(
    counting_server: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ldirector.cli import main

    cf = tmp_path / "count.cf"
    reals = "".join(f"\treal=127.0.0.1:{counting_server} masq {w}\n" for w in (1,))
    cf.write_text(
        "checktimeout=2\nnegotiatetimeout=2\n"
        f"virtual=127.0.0.100:80\n{reals}\tservice=http\n\trequest=/\n\treceive=ok\n"
        f"virtual=127.0.0.101:80\n{reals}\tservice=http\n\trequest=/\n\treceive=ok\n"
    )
    assert main.main(["check", "--probe", "--plan", "--json", str(cf)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["up"] for p in doc["probes"]] == [True, True]
    assert "rules" in doc and "probes" in doc
    assert len(Counting.hits) == 1  # one real behind two virtuals: one request, both reports
