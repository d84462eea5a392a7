"""``checks.run``: dispatch only, and cancellation safety.

The caller (ldirector's scheduler) owns the timeout, the timing and the containment of bugs:
``run`` neither times a check nor catches what a check lets escape. Every check is cancelled
while it waits on a server that never answers; nothing may be left open or running afterwards.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from ipaddress import ip_address

import pytest

import checks
from checks.types import (
    CheckSpec,
    ConnectSpec,
    DnsSpec,
    HttpSpec,
    NoneSpec,
    Result,
    SimpleTcpSpec,
    SipSpec,
    Target,
    Transport,
)
from tests.support.checkrun import leak_free, run_check
from tests.support.servers import black_hole, free_port, hung_tcp, hung_udp


async def test_none_is_always_up() -> None:
    target = Target(address=ip_address("127.0.0.1"), port=free_port())
    result = await run_check(target, NoneSpec(), 1)
    assert (result.ok, result.reason) == (True, "no check")


async def test_run_leaves_the_timing_to_the_caller() -> None:
    target = Target(address=ip_address("127.0.0.1"), port=free_port())
    result = await checks.run(target, ConnectSpec())
    assert result == Result(False, "connection refused")
    assert result.elapsed == 0.0
    # The harness fills it in; the constructor takes it third.
    assert Result(True, "x", 1.5).elapsed == 1.5


async def test_a_bug_in_a_check_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    # Containing it, with the wording the operator sees, is the scheduler's job.
    from checks import simpletcp

    async def broken(target: Target, spec: SimpleTcpSpec) -> Result:
        raise KeyError("oops")

    monkeypatch.setattr(simpletcp, "check", broken)
    with pytest.raises(KeyError, match="oops"):
        await checks.run(
            Target(address=ip_address("127.0.0.1"), port=1), SimpleTcpSpec(request="x")
        )


async def test_a_bug_in_a_probe_reaches_the_caller_and_closes_its_socket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A probe runs in the loop's callbacks: a bug there must end the check, not hang it.
    from checks import connect

    def broken(self: object) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(connect._Connect, "connected", broken)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        where = Target(address=ip_address("127.0.0.1"), port=listener.getsockname()[1])
        async with leak_free():
            with pytest.raises(KeyError, match="oops"):
                await checks.run(where, ConnectSpec())


async def test_run_has_no_deadline_of_its_own() -> None:
    # A black hole never answers: only the caller's timeout ends the check.
    with black_hole("127.0.0.1") as port:
        task = asyncio.create_task(
            checks.run(Target(address=ip_address("127.0.0.1"), port=port), ConnectSpec())
        )
        done, _ = await asyncio.wait({task}, timeout=0.3)
        assert not done
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture
def dead_ends() -> Iterator[dict[str, int]]:
    """Ports that never answer: a silent TCP listener, a black hole, a silent UDP socket."""
    with ExitStack() as stack:
        yield {
            "silent": stack.enter_context(hung_tcp("127.0.0.1")),
            "hole": stack.enter_context(black_hole("127.0.0.1")),
            "udp": stack.enter_context(hung_udp("127.0.0.1")),
        }


CASES: list[tuple[str, str, Transport, CheckSpec]] = [
    ("connect", "hole", Transport.TCP, ConnectSpec()),
    ("http", "silent", Transport.TCP, HttpSpec(receive=re.compile("x"))),
    ("https", "silent", Transport.TCP, HttpSpec(tls=True)),
    ("http_proxy", "silent", Transport.TCP, HttpSpec(proxy=True, request="http://127.0.0.1/")),
    ("dns-udp", "udp", Transport.UDP, DnsSpec(query="a.test")),
    ("dns-tcp", "silent", Transport.TCP, DnsSpec(query="a.test", tcp=True)),
    ("simpletcp", "silent", Transport.TCP, SimpleTcpSpec(request="x")),
    ("sip-udp", "udp", Transport.UDP, SipSpec(login="a@b")),
    ("sip-tcp", "silent", Transport.TCP, SipSpec(login="a@b")),
]


@pytest.mark.parametrize(("name", "port", "transport", "spec"), CASES, ids=[c[0] for c in CASES])
async def test_cancelled_mid_check_leaves_nothing_behind(
    dead_ends: dict[str, int],
    name: str,
    port: str,
    transport: Transport,
    spec: CheckSpec,
    no_leaks: None,
) -> None:
    # ping is cancelled mid-check in test_ping.py, inside a namespace where echoes go unanswered.
    target = Target(address=ip_address("127.0.0.1"), port=dead_ends[port], transport=transport)
    task = asyncio.create_task(checks.run(target, spec))
    await asyncio.sleep(0.2)
    assert not task.done(), f"{name} finished early: {task.result()}"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_checks_never_import_ldirector() -> None:
    import ast
    from pathlib import Path

    package = Path(checks.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(), str(module))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "ldirector" for n in names), module.name
