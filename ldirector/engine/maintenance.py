"""maintenancedir: a file named after a real server takes it out of service.

Sits beside the engine, which asks before applying each result. The directory listing is
cached for a second and reverse-DNS names for minutes: ldirectord resolves the name before
every single check (S4), which costs a DNS round trip per real per interval.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address, IPv6Address

from ldirector.clock import Clock
from ldirector.health import maintenance_match, maintenance_names

log = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[IPAddress], Awaitable[str | None]]


async def reverse_lookup(address: IPAddress) -> str | None:
    """The name the resolver gives for ``address``, or None."""
    try:
        host, _ = await asyncio.get_running_loop().getnameinfo(
            (str(address), 0), socket.NI_NAMEREQD
        )
    except OSError:
        return None
    return host


class Maintenance:
    """Answers "is this real in maintenance?" from a cached listing and cached names."""

    def __init__(
        self,
        directory: str,
        clock: Clock,
        *,
        resolver: Resolver = reverse_lookup,
        listing_ttl: float = 1.0,
        name_ttl: float = 300.0,
    ) -> None:
        self.directory = directory
        self._clock = clock
        self._resolver = resolver
        self._listing_ttl = listing_ttl
        self._name_ttl = name_ttl
        self._listing: frozenset[str] = frozenset()
        self._listed_at: float | None = None
        self._names: dict[IPAddress, tuple[str | None, float]] = {}
        self._lookups: dict[IPAddress, asyncio.Task[None]] = {}

    def match(self, address: IPAddress, port: int) -> str | None:
        """The maintenance file that names this real, if any.

        A name not resolved yet is looked up in the background; until then only the
        address forms match.
        """
        listing = self._entries()
        if not listing:
            return None
        return maintenance_match(maintenance_names(address, port, self._name(address)), listing)

    def _entries(self) -> frozenset[str]:
        now = self._clock.now()
        if self._listed_at is None or now - self._listed_at >= self._listing_ttl:
            self._listed_at = now
            try:
                self._listing = frozenset(os.listdir(self.directory))
            except OSError as exc:
                if self._listing:
                    log.warning("maintenancedir %s: %s", self.directory, exc.strerror)
                self._listing = frozenset()
        return self._listing

    def _name(self, address: IPAddress) -> str | None:
        cached = self._names.get(address)
        now = self._clock.now()
        if (cached is None or now - cached[1] >= self._name_ttl) and address not in self._lookups:
            self._lookups[address] = asyncio.create_task(self._resolve(address))
        return cached[0] if cached else None

    async def _resolve(self, address: IPAddress) -> None:
        try:
            self._names[address] = (await self._resolver(address), self._clock.now())
        finally:
            del self._lookups[address]

    async def close(self) -> None:
        """Cancel lookups still running."""
        for task in list(self._lookups.values()):
            task.cancel()
        await asyncio.gather(*self._lookups.values(), return_exceptions=True)
