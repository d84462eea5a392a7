"""A Daemon double for the socket and HTTP tests: a fixed snapshot, overrides recorded."""

from __future__ import annotations

from observe_world import config, snapshot

from ldirector.ipvs.backend import IpvsUnavailable
from ldirector.manual import resolve
from ldirector.status import Snapshot


class FakeDaemon:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, float | None]] = []
        self.config = config()

    async def snapshot(self) -> Snapshot:
        return snapshot()

    async def override(self, verb: str, virtual: str, real: str, bound: float | None) -> str:
        key = resolve(self.config, virtual, real)
        self.calls.append((verb, virtual, real, bound))
        return f"{verb} {key}"


class BlindDaemon(FakeDaemon):
    """A daemon whose kernel table cannot be read."""

    async def snapshot(self) -> Snapshot:
        raise IpvsUnavailable("permission denied: changing IPVS needs root (CAP_NET_ADMIN)")
