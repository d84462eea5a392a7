"""service=pop and pops (TLS from the first byte): the +OK greeting, then a login when one is set.

Called through :func:`checks.run`; speaks POP3 over :mod:`checks._lines`. Unlike ldirectord, a
check without a login still connects and needs the ``+OK`` greeting, so a dead server goes
down. With a login: USER, PASS and STAT must all answer ``+OK``.
"""

from __future__ import annotations

from checks._io import FAILURES, ProtocolError, describe, printable
from checks._lines import LineClient
from checks.types import PopSpec, Result, Target


async def _ok(pop: LineClient, what: str) -> str:
    line = await pop.readline()
    if not line.startswith("+OK"):
        if line.startswith("-ERR"):
            raise ProtocolError(f"POP3 {printable(line)} ({what})")
        raise ProtocolError(f"not a POP3 {what}: {printable(line)!r}")
    return printable(line)


async def check(target: Target, spec: PopSpec) -> Result:
    """Read the greeting, log in if configured, and QUIT."""
    try:
        async with await LineClient.open(target, tls=spec.tls) as pop:
            seen = await _ok(pop, "greeting")
            if spec.login:
                await pop.send(f"USER {spec.login}")
                await _ok(pop, "USER")
                await pop.send(f"PASS {spec.passwd}")
                await _ok(pop, "login")
                await pop.send("STAT")
                seen = f"logged in as {spec.login}: {await _ok(pop, 'STAT')}"
            await pop.goodbye("QUIT")
            return Result(True, seen)
    except FAILURES as exc:
        return Result(False, describe(exc))
