"""monitorfile lines in ldirectord's format, with the escaping."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldirector.config import loads
from ldirector.config.model import Real, Virtual
from ldirector.core import wording
from ldirector.engine import monitorfile
from ldirector.state.appendfile import RefusedFile

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
        (wording.IN_MAINTENANCE, "Server in maintenance"),
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


def _virtual(text: str) -> tuple[Virtual, Real]:
    (virtual,) = loads(text, "x.cf").virtuals
    return virtual, virtual.reals[0]


def test_real_id_of_a_negotiate_check_matches_the_reference_line() -> None:
    virtual, real = _virtual(
        "virtual=127.0.0.1:80\n\treal=127.0.0.23:8080 masq 1\n\tservice=http\n"
        "\tchecktype=negotiate\n"
        '\trequest="/x"\n\treceive="Test"\n'
    )
    rid = monitorfile.real_id(virtual, real)
    assert rid == "negotiate:http:tcp:127.0.0.23:8080:::1:masq:\\/x:Test"
    line = monitorfile.format_line(WHEN, 15417, rid, False, "500 Internal Server Error")
    assert line == (
        "[Fri Nov 27 05:31:17 2026] [15417] negotiate http tcp 127.0.0.23 8080 1 masq /x Test"
        " [down] 500 Internal Server Error"
    )


def test_real_id_of_external_and_combined_checks() -> None:
    virtual, real = _virtual(
        "virtual=127.0.0.1:53\n\treal=127.0.0.2:53 gate 2\n\tprotocol=udp\n"
        '\tchecktype=external\n\tcheckcommand="/usr/local/bin/probe"\n\tcheckport=5353\n'
    )
    assert monitorfile.real_id(virtual, real).startswith(
        "external:/usr/local/bin/probe:udp:127.0.0.2:53::5353:2:gate:"
    )
    virtual, real = _virtual(
        "virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\tservice=http\n\tchecktype=3\n"
        '\tvirtualhost="www.example.org"\n'
    )
    assert monitorfile.real_id(virtual, real).startswith(
        "combined:http:tcp:127.0.0.2:80:www.example.org::1:gate:"
    )


def test_quotemeta_escapes_every_non_word_character() -> None:
    assert monitorfile.quotemeta("a_1/b c:d") == "a_1\\/b\\ c\\:d"
    assert monitorfile.display_id(monitorfile.quotemeta("/a:b")) == "/a b"


def test_monitors_write_each_virtuals_file_and_skip_virtuals_without(tmp_path: Path) -> None:
    path = tmp_path / "m.log"
    virtual, real = _virtual(
        "virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\tchecktype=connect\n"
        f'\tmonitorfile="{path}"\n'
    )
    monitors = monitorfile.Monitors()
    monitors.write(virtual, real, True, "")
    monitors.write(virtual, real, False, "connection refused")
    lines = path.read_text().splitlines()
    # The empty receive ends the id with ':', hence two spaces before the state, as ldirectord.
    assert [ln.split("] ", 2)[2] for ln in lines] == [
        "connect tcp 127.0.0.2 80 1 gate /  [up] -",
        "connect tcp 127.0.0.2 80 1 gate /  [down] connection refused",
    ]
    bare, bare_real = _virtual("virtual=127.0.0.1:81\n\treal=127.0.0.2:80 gate\n")
    monitors.write(bare, bare_real, True, "")  # no monitorfile=: nothing is written anywhere
    assert len(path.read_text().splitlines()) == 2 and sorted(tmp_path.iterdir()) == [path]


def _monitored(path: Path) -> tuple[Virtual, Real]:
    return _virtual(
        "virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\tchecktype=connect\n"
        f'\tmonitorfile="{path}"\n'
    )


def test_a_fifo_monitorfile_is_refused_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No reader: an open() that waits would freeze the event loop (and signals, the socket)."""
    fifo = tmp_path / "monitor.log"
    os.mkfifo(fifo)
    virtual, real = _monitored(fifo)
    monitors = monitorfile.Monitors()
    done: list[float] = []

    def write() -> None:
        start = time.monotonic()
        for _ in range(3):
            monitors.write(virtual, real, True, "")
        done.append(time.monotonic() - start)

    thread = threading.Thread(target=write, daemon=True)
    with caplog.at_level(logging.INFO, logger="ldirector"):
        thread.start()
        thread.join(1.0)
        if thread.is_alive():  # let the stuck writer through before failing
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            time.sleep(0.2)
            os.close(fd)
    assert done and done[0] < 0.5, "writing the monitorfile blocked"
    errors = [r.getMessage() for r in caplog.records if "monitorfile" in r.getMessage()]
    assert errors == [f"cannot write monitorfile {fifo}: a FIFO, not a regular file"]


def test_a_fifo_monitorfile_with_a_reader_gets_nothing(tmp_path: Path) -> None:
    fifo = tmp_path / "monitor.log"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(RefusedFile):
            monitorfile.MonitorFile(fifo).write("connect:tcp:127.0.0.2:80", True, "-")
        assert os.read(reader, 4096) == b""
    finally:
        os.close(reader)


def test_a_symlinked_monitorfile_is_refused_until_it_is_a_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "shadow"
    target.write_text("root only\n")
    link = tmp_path / "monitor.log"
    link.symlink_to(target)
    virtual, real = _monitored(link)
    monitors = monitorfile.Monitors()
    with caplog.at_level(logging.INFO, logger="ldirector"):
        monitors.write(virtual, real, True, "")
        monitors.write(virtual, real, False, "refused")
        assert target.read_text() == "root only\n"
        link.unlink()
        monitors.write(virtual, real, True, "")
    assert link.read_text().endswith("[up] -\n") and not link.is_symlink()
    lines = [r.getMessage() for r in caplog.records if "monitorfile" in r.getMessage()]
    assert lines == [
        f"cannot write monitorfile {link}: a symbolic link, not a regular file",
        f"monitorfile {link} is written again",
    ]
