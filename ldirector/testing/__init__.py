"""Test doubles for code built on ldirector: fakes that fail the way the real thing does.

Public and shipped, so tests outside this project can drive ldirector's parts without a kernel.
Production code never imports this package.
"""

from ldirector.testing.clock import FakeClock
from ldirector.testing.ipvs import FakeBackend

__all__ = ["FakeBackend", "FakeClock"]
