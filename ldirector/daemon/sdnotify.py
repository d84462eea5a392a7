"""systemd notify edge: READY/RELOADING/STOPPING/WATCHDOG datagrams for ``Type=notify`` units.

A dozen lines of socket code instead of a dependency. Outside systemd (no ``NOTIFY_SOCKET``)
every call is a no-op, so the daemon calls it unconditionally.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Mapping


class Notifier:
    """Sends sd_notify(3) state strings to ``$NOTIFY_SOCKET``."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # A leading "@" names a socket in the abstract namespace.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_seconds = _watchdog_seconds(env)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, state: str) -> bool:
        """Best effort: a missing or dead socket must never take the daemon down."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(state.encode(), self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def reloading(self) -> bool:
        # MONOTONIC_USEC lets Type=notify-reload units match the reload to this request.
        return self.send(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    async def watchdog_loop(self) -> None:
        """Pings at half the unit's WatchdogSec for as long as the event loop is responsive."""
        if self.watchdog_seconds is None:
            return
        interval = self.watchdog_seconds / 2
        while True:
            self.watchdog()
            await asyncio.sleep(interval)


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    # systemd sets WATCHDOG_PID so a forked helper does not ping on the main process's behalf.
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000
