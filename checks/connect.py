"""checktype=connect: a TCP handshake with the real server, then close.

Called by :func:`checks.run` for a ``ConnectSpec``, or started by :func:`checks.begin` without a
task; UDP virtual services get a ping instead, which the planner (not this module) decides.
"""

from __future__ import annotations

from checks.probe import Done, Probe
from checks.types import Result, Target

_UP = Result(True, "connected")


class _Connect(Probe):
    """Up when ``target`` completes a TCP handshake."""

    __slots__ = ()

    def connected(self) -> None:
        self.finish(_UP)


def begin(target: Target, done: Done) -> Probe:
    """Start the handshake; ``done`` gets its result (see :mod:`checks.probe`)."""
    return _Connect(target, done)
