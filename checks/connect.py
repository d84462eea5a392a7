"""checktype=connect: a TCP handshake with the real server, then close.

Called by :func:`checks.run` for a ``ConnectSpec``; UDP virtual services get a ping instead,
which the planner (not this module) decides.
"""

from __future__ import annotations

from checks._io import describe, tcp_connect
from checks.types import ConnectSpec, Result, Target


async def check(target: Target, spec: ConnectSpec) -> Result:
    """Up when ``target`` completes a TCP handshake."""
    del spec
    try:
        sock = await tcp_connect(target)
    except OSError as exc:
        return Result(False, describe(exc))
    sock.close()
    return Result(True, "connected")
