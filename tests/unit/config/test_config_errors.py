"""One fixture per diagnostic: testdata/errors/NAME.cf lists what it must produce in its header.

A header line reads ``# expect: LINE: SEVERITY: MESSAGE``. The load must report exactly those
diagnostics (no fewer, no others), with their exact lines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cfgtools import TESTDATA, load_fixture, no_mysql_driver

from ldirector.config import ConfigError, Severity

ERRORS = sorted((TESTDATA / "errors").glob("*.cf"))


def expected(path: Path) -> list[str]:
    lines = []
    for raw in path.read_bytes().splitlines():
        if raw.startswith(b"# expect: "):
            lines.append(f"{path}:{raw[len(b'# expect: ') :].decode()}")
    return lines


def actual(path: Path) -> tuple[list[str], bool]:
    try:
        config = load_fixture(path, no_mysql_driver)
    except ConfigError as exc:
        return [str(d) for d in exc.diagnostics], True
    return [str(d) for d in config.warnings], False


def test_there_are_many_fixtures() -> None:
    assert len(ERRORS) > 100


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.stem)
def test_fixture_reports_exactly_its_diagnostics(path: Path) -> None:
    want = expected(path)
    got, failed = actual(path)
    assert want, f"{path.name} has no '# expect:' header"
    assert sorted(got) == sorted(want)
    assert failed == any(": error: " in line for line in want)


def test_every_diagnostic_has_its_own_line_and_severity() -> None:
    err = None
    try:
        load_fixture(TESTDATA / "errors" / "many-errors.cf", no_mysql_driver)
    except ConfigError as exc:
        err = exc
    assert err is not None
    assert [d.span.line for d in err.errors] == [6, 8, 9, 11, 12]
    assert all(d.severity is Severity.ERROR for d in err.errors)
    assert str(err).count("\n") == 4
