"""maintenancedir: a file named after a real server takes it out of service.

Sits beside the engine, which asks before applying each result. The directory listing is
cached for a second and reverse-DNS names for minutes: ldirectord resolves the name before
every single check (S4), which costs a DNS round trip per real per interval.

The listing runs on the event loop, so it is bounded: at most ``MAX_LISTING`` names are read.
A directory holding more is not listed but asked for each real's few names (an ``lstat``
each, cached for the same second). Entries are never opened, so a FIFO or a device in the
directory is just a name.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from ipaddress import IPv4Address, IPv6Address

from ldirector.core.health import maintenance_match, maintenance_names
from ldirector.engine.clock import Clock

log = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
Resolver = Callable[[IPAddress], Awaitable[str | None]]

#: Most names read from maintenancedir in one listing. A real is named by at most six files,
#: so this covers hundreds of reals in maintenance at once.
MAX_LISTING = 4096


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
        #: The directory holds more than MAX_LISTING names: each is looked up instead.
        self._crowded = False
        self._looked_up: dict[str, bool] = {}
        self._names: dict[IPAddress, tuple[str | None, float]] = {}
        self._lookups: dict[IPAddress, asyncio.Task[None]] = {}

    def match(self, address: IPAddress, port: int) -> str | None:
        """The maintenance file that names this real, if any.

        A name not resolved yet is looked up in the background; until then only the
        address forms match.
        """
        listing = self._entries()
        if not listing and not self._crowded:
            return None
        names = maintenance_names(address, port, self._name(address))
        if self._crowded:
            return next((name for name in names if self._exists(name)), None)
        return maintenance_match(names, listing)

    def _entries(self) -> frozenset[str]:
        now = self._clock.now()
        if self._listed_at is None or now - self._listed_at >= self._listing_ttl:
            self._listed_at = now
            self._looked_up = {}
            try:
                with os.scandir(self.directory) as entries:
                    names = [e.name for e in itertools.islice(entries, MAX_LISTING + 1)]
            except OSError as exc:
                if self._listing or self._crowded:
                    log.warning("maintenancedir %s: %s", self.directory, exc.strerror)
                self._listing, self._crowded = frozenset(), False
                return self._listing
            crowded = len(names) > MAX_LISTING
            if crowded and not self._crowded:
                log.warning(
                    "maintenancedir %s holds more than %d entries: looking up each real's"
                    " names in it instead",
                    self.directory,
                    MAX_LISTING,
                )
            self._crowded = crowded
            self._listing = frozenset() if crowded else frozenset(names)
        return self._listing

    def _exists(self, name: str) -> bool:
        """Whether the directory has an entry ``name`` (never followed, never opened)."""
        known = self._looked_up.get(name)
        if known is None:
            known = self._looked_up[name] = _plain(name) and _lexists(self.directory, name)
        return known

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


def _plain(name: str) -> bool:
    """A name that stays inside the directory (a reverse-DNS answer is not trusted)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _lexists(directory: str, name: str) -> bool:
    try:
        os.lstat(os.path.join(directory, name))
    except OSError:
        return False
    return True
