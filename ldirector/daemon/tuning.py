"""The garbage collector, tuned for a heap that is mostly long-lived state plus checks in flight.

CPython 3.11's collector walks every object of a generation when it collects it. The engine's
heap is the config, the check jobs and the health of every real (long-lived), plus the objects of
the checks in flight, and asyncio and aiohttp leave a few reference cycles behind every check
(a socket transport keeps a bound method of itself). With the default thresholds (700, 10, 10)
and 10,000 reals, checks in flight were promoted into the old generation and full collections
ran every few seconds at ~250 ms each: the loop fell behind, more checks were in flight, each
collection grew, and checks started seconds late (tests/bench/bench_engine.py).

So: after the config is installed, everything alive is collected once and frozen out of the
collector's sight, and the young generation is allowed to grow to ``YOUNG`` objects before it
is collected, so a check's objects die before any collection sees them. On 3.11 the
transport's cycle is broken when its connection is lost, as CPython 3.12 does (gh-100348), so a
closed connection is freed at once instead of waiting, socket and all, for a collection. In the
benchmark the collector then takes under 1% of the core (0.5 s in 170 s at 2,000 checks/s);
with the default thresholds and everything else equal, the engine still falls behind.
"""

from __future__ import annotations

import gc
import sys
from asyncio import selector_events
from typing import Any

#: Net new container objects before a young collection (CPython's default: 700).
YOUNG = 50_000
#: Young collections per middle one, middle ones per full one (CPython's defaults).
MIDDLE = 10
OLD = 10


class Collector:
    """Applies the tuning while an engine runs and restores the previous thresholds after.

    The daemon does it around the engine's life (``settle`` is the engine's ``on_installed``):
    an engine run by a library user, a test or a bench leaves the process as it found it.
    """

    def __init__(self) -> None:
        self._saved: tuple[int, int, int] | None = None

    def settle(self) -> None:
        """Collect once, freeze what survives, and use the engine's thresholds.

        Called after start and after every reload: what the new config brought is long-lived.
        Frozen objects are still freed by reference counting, but a frozen cycle would never
        be, so what the last reload froze is thawed first (the old config may hold cycles).
        """
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(YOUNG, MIDDLE, OLD)
        break_transport_cycles()
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def restore(self) -> None:
        """Give the collector its thresholds back (the engine has stopped)."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None


def break_transport_cycles() -> None:
    """Backport CPython 3.12's fix for gh-100348 to 3.11: idempotent, a no-op on 3.12 and later.

    ``_SelectorSocketTransport`` keeps a bound method of itself in ``_read_ready_cb``, so every
    connection the checks close is a reference cycle that only the collector can free.
    """
    if sys.version_info >= (3, 12):
        return
    transport: Any = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009 - private
    lost = transport._call_connection_lost
    if getattr(lost, "_ldirector_breaks_cycle", False):
        return

    def call_connection_lost(self: Any, exc: object) -> None:
        try:
            lost(self, exc)
        finally:
            # The reader was removed when the transport closed: nothing calls it any more.
            self._read_ready_cb = None

    call_connection_lost._ldirector_breaks_cycle = True  # type: ignore[attr-defined]
    transport._call_connection_lost = call_connection_lost
