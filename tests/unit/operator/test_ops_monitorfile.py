"""monitorfile lines in ldirectord's format (reference 5.9), with the escaping."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldirector import monitorfile

WHEN = 1795757477  # Fri Nov 27 05:31:17 2026 UTC


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_line_matches_the_reference_example() -> None:
    real_id = "negotiate:http:tcp:127.0.0.23:8080:1:masq:\\/x:Test"
    line = monitorfile.format_line(WHEN, 15417, real_id, False, "500 Internal Server Error")
    assert line == (
        "[Fri Nov 27 05:31:17 2026] [15417] negotiate http tcp 127.0.0.23 8080 1 masq /x Test"
        " [down] 500 Internal Server Error"
    )


@pytest.mark.parametrize(
    ("message", "written"),
    [
        ("200 OK", "200 OK"),
        ("100% | done", "100%25 %7C done"),
        ("<html>\r\n<body>Not it</body>\n", "<html>%0D%0A<body>Not it</body>%0A"),
        ("", "-"),
        (monitorfile.IN_MAINTENANCE, "Server in maintenance"),
    ],
)
def test_message_escaping(message: str, written: str) -> None:
    line = monitorfile.format_line(WHEN, 1, "connect:tcp:127.0.0.2:80", True, message)
    assert line == f"[Fri Nov 27 05:31:17 2026] [1] connect tcp 127.0.0.2 80 [up] {written}"
    assert "\n" not in line and "\r" not in line


def test_colon_runs_collapse_to_one_space() -> None:
    assert monitorfile.display_id("a::b:::c") == "a b c"


def test_writer_appends_one_line_per_result(tmp_path: Path) -> None:
    path = tmp_path / "monitor.log"
    writer = monitorfile.MonitorFile(path)
    writer.write("connect:tcp:127.0.0.2:80", True, "-", when=WHEN)
    path.rename(tmp_path / "monitor.log.1")  # rotated: the next line starts a new file
    writer.write("connect:tcp:127.0.0.2:80", False, "Connection failed", when=WHEN + 1)
    pid = os.getpid()
    assert (tmp_path / "monitor.log.1").read_text() == (
        f"[Fri Nov 27 05:31:17 2026] [{pid}] connect tcp 127.0.0.2 80 [up] -\n"
    )
    assert path.read_text() == (
        f"[Fri Nov 27 05:31:18 2026] [{pid}] connect tcp 127.0.0.2 80 [down] Connection failed\n"
    )
