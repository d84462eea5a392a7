"""The command lines: ``status -v``/``--json`` on top of ldirectord's status, and the overrides."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ldirector.cli import control, main
from ldirector.cli.grammar import Invocation, Verb
from ldirector.cli.lifecycle import Context
from ldirector.control.protocol import socket_path
from ldirector.control.server import ControlServer
from tests.support.cli import control_verb, parse
from tests.support.fake_daemon import FakeDaemon


class PlainStatus:
    """Stands in for ldirectord's status: its message and exit code."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.calls: list[Invocation] = []

    def __call__(self, inv: Invocation, ctx: Context) -> int:
        self.calls.append(inv)
        if self.code == 0:
            ctx.err.write("ldirectord for /etc/ha.d/ldirectord.cf is running with pid: 42\n")
        else:
            ctx.out.write("ldirectord is stopped for /etc/ha.d/ldirectord.cf\n")
        return self.code


def test_plain_status_is_ldirectords_alone(tmp_path: Path) -> None:
    for argv in (["status"], ["x.cf", "status"], ["-d", "status"]):
        plain = PlainStatus(0)
        out, err = io.StringIO(), io.StringIO()
        # No socket in tmp_path: plain status must not ask the daemon anything.
        code = control.status(parse(argv), Context(out, err, control_dir=tmp_path), plain=plain)
        assert (code, out.getvalue(), len(plain.calls)) == (0, "", 1)
    assert parse(["check"]).verb is Verb.CHECK and parse(["start"]).verb is Verb.START


def test_parsed_forms() -> None:
    inv = parse(["status", "-v"])
    assert (inv.verb, inv.cfgname, inv.flag("verbose"), inv.flag("json")) == (
        Verb.STATUS,
        "ldirectord",
        True,
        False,
    )
    inv = parse(["-d", "/etc/ha.d/web.cf", "status", "--json"])
    assert (inv.verb, inv.config_arg, inv.cfgname, inv.debug) == (
        Verb.STATUS,
        "/etc/ha.d/web.cf",
        "web.cf",
        True,
    )
    assert inv.flag("json") and not inv.flag("verbose")
    inv = parse(["web.cf", "drain", "127.0.0.100:80", "127.0.0.2:8080", "--timeout", "30"])
    assert (inv.verb, inv.cfgname, inv.operands, inv.options["timeout"]) == (
        Verb.DRAIN,
        "web.cf",
        ("127.0.0.100:80", "127.0.0.2:8080"),
        30.0,
    )
    assert parse(["disable", "fwm:7", "[::1]:80"]).verb is Verb.DISABLE


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
    assert main.main(argv, out=out, err=err) == 255
    first = err.getvalue().splitlines()[0]
    assert error in first and first.startswith("ldirector: ")
    assert out.getvalue() == ""


@pytest.fixture
async def sockdir(tmp_path: Path) -> AsyncIterator[Path]:
    server = ControlServer(socket_path("ldirectord", tmp_path), FakeDaemon())
    await server.start()
    try:
        yield tmp_path
    finally:
        await server.close()


async def run(argv: list[str], plain: PlainStatus, directory: Path) -> tuple[int, str, str]:
    return await asyncio.to_thread(control_verb, argv, directory, plain)


async def test_status_verbose_adds_the_table_to_ldirectords_message(sockdir: Path) -> None:
    plain = PlainStatus(0)
    code, out, err = await run(["status", "-v"], plain, sockdir)
    assert code == 0 and [inv.verb for inv in plain.calls] == [Verb.STATUS]
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
