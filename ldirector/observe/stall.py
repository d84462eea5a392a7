"""Event-loop stall detector: notices when something blocks the daemon's only thread.

Sits beside the engine in the daemon. Every check, timer and signal runs on one asyncio loop, so
a blocking call (a check that forgot to await, a huge synchronous computation) delays them all.
A task sleeps a short interval and measures how late it wakes; lateness over a threshold is
logged with its size and counted for ``/metrics``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

#: How often the detector wakes, and the lateness that counts as a stall (seconds).
DEFAULT_INTERVAL = 0.1
DEFAULT_THRESHOLD = 0.25


class StallDetector:
    """Counts and logs event-loop stalls; run :meth:`run` as a task, cancel it to stop."""

    def __init__(
        self,
        *,
        interval: float = DEFAULT_INTERVAL,
        threshold: float = DEFAULT_THRESHOLD,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.threshold = threshold
        self._clock = clock
        self.count = 0
        self.max_lateness = 0.0

    def observe(self, lateness: float) -> bool:
        """Account one wake-up ``lateness`` seconds late; True when it is a stall."""
        if lateness < self.threshold:
            return False
        self.count += 1
        self.max_lateness = max(self.max_lateness, lateness)
        log.warning(
            "event loop stalled for %.3f s (something blocked the daemon; checks ran late)",
            lateness,
        )
        return True

    async def run(self) -> None:
        while True:
            before = self._clock()
            await asyncio.sleep(self.interval)
            self.observe(max(0.0, self._clock() - before - self.interval))
