"""The part-2 test support itself: a missing daemon skips locally and fails under CI=true."""

from __future__ import annotations

import pytest
from part2 import support

from checks._lines import printable


def test_missing_daemon_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        support.need("/nonexistent/daemon")


def test_missing_daemon_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and /nonexistent/daemon"):
        support.need("/nonexistent/daemon")


def test_installed_daemon_is_found() -> None:
    assert support.need("/nonexistent/daemon", "/bin/sh") == "/bin/sh"


def test_reasons_are_one_bounded_line() -> None:
    assert printable("550 no\r\nsecond line\x00") == "550 no\\x0d\\x0asecond line\\x00"
    assert len(printable("x" * 500)) == 120
