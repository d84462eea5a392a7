"""The event-loop stall detector."""

from __future__ import annotations

import asyncio
import time

import pytest

from ldirector.observe.stall import StallDetector


def test_lateness_over_the_threshold_counts_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    detector = StallDetector(threshold=0.25)
    assert detector.observe(0.1) is False
    assert detector.observe(0.4) is True
    assert detector.observe(0.3) is True
    assert (detector.count, detector.max_lateness) == (2, 0.4)
    assert "event loop stalled for 0.400 s" in caplog.text


async def test_a_blocking_call_is_noticed(caplog: pytest.LogCaptureFixture) -> None:
    detector = StallDetector(interval=0.01, threshold=0.1)
    task = asyncio.create_task(detector.run())
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # noqa: ASYNC251 -- the blocking call this detector exists to notice
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert detector.count == 1
    assert 0.2 < detector.max_lateness < 2.0
    assert "event loop stalled" in caplog.text
