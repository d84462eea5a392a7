"""A Daemon double for the socket and HTTP tests: a fixed snapshot, overrides recorded; and
the status endpoint serving a snapshot source on loopback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ldirector.core.holds import resolve
from ldirector.ipvs.backend import IpvsUnavailable
from ldirector.observe import endpoint
from ldirector.observe.shared import SnapshotSource
from ldirector.observe.snapshot import Snapshot
from tests.support.observe_world import config, snapshot


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


@contextlib.asynccontextmanager
async def serving(source: SnapshotSource) -> AsyncIterator[str]:
    """The status endpoint on a free loopback port; yields its base URL (no final slash)."""
    listener = await endpoint.start(source, "127.0.0.1", 0)
    try:
        host, port = listener.address
        yield f"http://{host}:{port}"
    finally:
        await listener.close()
