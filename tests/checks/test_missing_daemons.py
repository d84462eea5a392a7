"""The check tests' own rule: a missing daemon skips locally and fails under CI=true."""

from __future__ import annotations

import pytest

from tests.support.servers import need


def test_missing_daemon_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        need("/nonexistent/daemon")


def test_missing_daemon_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and /nonexistent/daemon"):
        need("/nonexistent/daemon")


def test_installed_daemon_is_found() -> None:
    assert need("/nonexistent/daemon", "/bin/sh") == "/bin/sh"
    assert need("/nonexistent/*/daemon", "sh").endswith("/sh")  # a glob, then a name on PATH
