"""The command lines: ``status -v``/``--json`` on top of ldirectord's status, and the overrides."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_daemon import FakeDaemon

from ldirector.control import ControlServer, socket_path
from ldirector.controlcli import CliRequest, cli_main, parse_cli


def test_plain_status_and_other_commands_are_not_ours() -> None:
    for argv in (["status"], ["x.cf", "status"], ["-d", "status"], ["check"], ["start"], []):
        assert parse_cli(argv) is None


def test_parsed_forms() -> None:
    assert parse_cli(["status", "-v"]) == CliRequest(
        "status", ("status",), "ldirectord", verbose=True
    )
    assert parse_cli(["-d", "/etc/ha.d/web.cf", "status", "--json"]) == CliRequest(
        "status", ("-d", "/etc/ha.d/web.cf", "status"), "web.cf", json=True
    )
    assert parse_cli(
        ["web.cf", "drain", "127.0.0.100:80", "127.0.0.2:8080", "--timeout", "30"]
    ) == (
        CliRequest(
            "drain",
            ("web.cf", "status"),
            "web.cf",
            virtual="127.0.0.100:80",
            real="127.0.0.2:8080",
            bound=30.0,
        )
    )
    request = parse_cli(["disable", "fwm:7", "[::1]:80"])
    assert isinstance(request, CliRequest) and request.verb == "disable"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["status", "-x"], "status: unknown option -x"),
        (["disable", "127.0.0.100:80"], "disable needs VIRTUAL and REAL"),
        (["enable", "a", "b", "c"], "enable needs VIRTUAL and REAL"),
        (["disable", "web", "127.0.0.2"], "disable: not a virtual service: 'web'"),
        (["drain", "127.0.0.100:80", "host:80"], "drain: not a real server: 'host:80'"),
        (["drain", "127.0.0.100:80", "127.0.0.2", "--timeout", "soon"], "wants seconds"),
        (["drain", "127.0.0.100:80", "127.0.0.2", "--timeout=-5"], "must be 0..604800"),
        (["disable", "127.0.0.100:80", "127.0.0.2", "--timeout", "5"], "drain only"),
        (["enable", "127.0.0.100:80", "127.0.0.2", "--force"], "unknown option --force"),
    ],
)
def test_bad_command_lines_get_one_line(argv: list[str], error: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert cli_main(argv, plain_status=_never, out=out, err=err) == 255
    first = err.getvalue().splitlines()[0]
    assert error in first and first.startswith("ldirector: ")
    assert out.getvalue() == ""


def _never(argv: list[str], **_: Any) -> int:
    raise AssertionError("status must not run")


class PlainStatus:
    """Stands in for commands.main: ldirectord's message and exit code."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.argv: list[str] = []

    def __call__(self, argv: list[str], *, out: io.StringIO, err: io.StringIO) -> int:
        self.argv = argv
        if self.code == 0:
            err.write("ldirectord for /etc/ha.d/ldirectord.cf is running with pid: 42\n")
        else:
            out.write("ldirectord is stopped for /etc/ha.d/ldirectord.cf\n")
        return self.code


@pytest.fixture
async def sockdir(tmp_path: Path) -> AsyncIterator[Path]:
    server = ControlServer(socket_path("ldirectord", tmp_path), FakeDaemon())
    await server.start()
    try:
        yield tmp_path
    finally:
        await server.close()


async def run(argv: list[str], plain: PlainStatus, directory: Path) -> tuple[int | None, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(
        cli_main, argv, plain_status=plain, out=out, err=err, directory=directory
    )
    return code, out.getvalue(), err.getvalue()


async def test_status_verbose_adds_the_table_to_ldirectords_message(sockdir: Path) -> None:
    plain = PlainStatus(0)
    code, out, err = await run(["status", "-v"], plain, sockdir)
    assert code == 0 and plain.argv == ["status"]
    assert err == "ldirectord for /etc/ha.d/ldirectord.cf is running with pid: 42\n"
    assert out.splitlines()[0] == "tcp:127.0.0.100:80 wrr: kernel matches desired"
    assert "127.0.0.3:8080" in out and "connection refused" in out


async def test_status_json_is_pure_json_on_stdout(sockdir: Path) -> None:
    code, out, _ = await run(["status", "--json"], PlainStatus(0), sockdir)
    assert code == 0
    doc = json.loads(out)
    assert [r["real"] for r in doc["virtuals"][0]["reals"]] == ["127.0.0.2:8080", "127.0.0.3:8080"]


async def test_stopped_daemon_keeps_ldirectords_answer(sockdir: Path) -> None:
    code, out, err = await run(["status", "-v"], PlainStatus(3), sockdir)
    assert (code, out) == (3, "ldirectord is stopped for /etc/ha.d/ldirectord.cf\n")
    code, out, err = await run(["status", "--json"], PlainStatus(3), sockdir)
    assert (code, out) == (3, "")
    assert "is stopped" in err


async def test_running_without_a_socket_is_one_line(tmp_path: Path) -> None:
    code, out, err = await run(["status", "-v"], PlainStatus(0), tmp_path)
    assert code == 1 and out == ""
    assert err.splitlines()[-1].startswith("ldirector: ")
    assert "no control socket" in err


async def test_overrides_reach_the_daemon(sockdir: Path) -> None:
    code, out, _ = await run(["drain", "127.0.0.100:80", "127.0.0.2:8080"], PlainStatus(0), sockdir)
    assert (code, out) == (0, "drain 127.0.0.2:8080 (tcp:127.0.0.100:80)\n")
    code, out, err = await run(["disable", "127.0.0.100:80", "127.0.0.9"], PlainStatus(0), sockdir)
    assert code == 1 and out == ""
    assert (
        err
        == "ldirector: disable: virtual service tcp:127.0.0.100:80 has no real server 127.0.0.9\n"
    )
