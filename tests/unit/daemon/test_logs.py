"""Log destinations and line formats, the state-change wording, and the secret filter."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest

from ldirector.core import wording
from ldirector.core.text import redact
from ldirector.daemon import logs
from tests.support.loggers import restore_ldirector_logger

LOCALTIME = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
    restore_ldirector_logger()


def test_localtime_is_perls_scalar_localtime() -> None:
    assert wording.localtime(1795757316) == "Fri Nov 27 05:28:36 2026"
    assert wording.localtime(1788922800) == "Wed Sep  9 03:00:00 2026"


@pytest.mark.parametrize(
    ("logfile", "debug", "supervised", "expected"),
    [
        (None, False, False, logs.LogFile(Path("/var/log/ldirectord.log"))),
        ("/tmp/x.log", False, False, logs.LogFile(Path("/tmp/x.log"))),
        ("local0", False, False, logs.Syslog("local0")),
        ("daemon", False, False, logs.Syslog("daemon")),
        ("LOCAL7", False, False, logs.Syslog("local7")),
        ("/tmp/x.log", False, True, logs.Stdout()),
        ("/tmp/x.log", True, True, logs.Stderr()),
    ],
)
def test_destination_precedence(
    logfile: str | None, debug: bool, supervised: bool, expected: logs.Destination
) -> None:
    assert logs.destination_for(logfile, debug=debug, supervised=supervised) == expected


def test_unknown_facility_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match=r"^unknown syslog facility 'locl0' in logfile=$"):
        logs.destination_for("locl0", debug=False, supervised=False)


def test_logfile_lines_and_logrotate_safety(tmp_path: Path) -> None:
    path = tmp_path / "ldirectord.log"
    logs.configure(logs.LogFile(path), "ldirectord.cf")
    log = logging.getLogger(wording.LOGGER_NAME)
    log.info(wording.deleted_real_message("127.0.0.2:80", "127.0.0.1:80"))
    # Rotated away (logrotate "create" or a plain mv): the next line makes a fresh file.
    path.rename(tmp_path / "ldirectord.log.1")
    log.info("after rotation")
    old = (tmp_path / "ldirectord.log.1").read_text().splitlines()
    new = path.read_text().splitlines()
    pattern = rf"^\[{LOCALTIME}\|ldirectord\.cf\|{os.getpid()}\] "
    assert len(old) == 1 and re.match(pattern + r"Deleted real server: 127\.0\.0\.2:80 \(", old[0])
    assert len(new) == 1 and re.match(pattern + "after rotation$", new[0])


def test_logfile_write_failure_falls_back_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logs.LogFile(tmp_path / "missing-dir" / "x.log"), "x.cf")
    logging.getLogger(wording.LOGGER_NAME).info("cannot be written")
    assert re.match(rf"^\[{LOCALTIME}\|x\.cf\|\d+\] cannot be written\n$", capsys.readouterr().err)


def test_supervised_goes_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(logs.Stdout(), "x.cf")
    logging.getLogger(wording.LOGGER_NAME).info("hello")
    assert re.match(rf"^\[{LOCALTIME}\] hello\n$", capsys.readouterr().out)


def test_debug_goes_to_stderr_plain(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(logs.Stderr(), "x.cf", debug=True)
    log = logging.getLogger(wording.LOGGER_NAME)
    log.info("plain line")
    log.debug("check detail")
    assert capsys.readouterr().err == "plain line\nDEBUG: check detail\n"


def test_syslog_datagram_has_ident_pid_facility_and_the_levels_priority(tmp_path: Path) -> None:
    address = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(5)
        logs.configure(logs.Syslog("local0"), "x.cf", syslog_address=address, debug=True)
        log = logging.getLogger(wording.LOGGER_NAME)
        log.error("Restored real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 1)")
        log.info("second")
        log.warning("third")
        log.critical("fourth")
        log.debug("fifth")
        received = [server.recv(4096) for _ in range(5)]
    # local0 (16) * 8 + the level's priority: err 3, info 6, warning 4, crit 2, debug 7.
    pid = os.getpid()
    assert received == [
        f"<131>ldirectord[{pid}]: Restored real server: 127.0.0.2:80 (127.0.0.1:80)"
        " (Weight set to 1)\x00".encode(),
        f"<134>ldirectord[{pid}]: second\x00".encode(),
        f"<132>ldirectord[{pid}]: third\x00".encode(),
        f"<130>ldirectord[{pid}]: fourth\x00".encode(),
        f"<135>ldirectord[{pid}]: fifth\x00".encode(),
    ]


def test_syslog_keeps_the_facility(tmp_path: Path) -> None:
    address = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        server.settimeout(5)
        logs.configure(logs.Syslog("daemon"), "x.cf", syslog_address=address)
        logging.getLogger(wording.LOGGER_NAME).error("cannot reconcile the IPVS table: EPERM")
        received = server.recv(4096)
    # daemon (3) * 8 + err (3) = 27
    assert received.startswith(b"<27>ldirectord[")
    assert received.endswith(b"]: cannot reconcile the IPVS table: EPERM\x00")


def test_state_change_wording() -> None:
    real, virtual = wording.hostport(ip_address("127.0.0.2"), 80), "127.0.0.1:80"
    assert wording.added_real_message(real, virtual, 5) == (
        "Added real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 5)"
    )
    assert wording.restored_real_message(real, virtual, 1) == (
        "Restored real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 1)"
    )
    assert wording.deleted_real_message(real, virtual) == (
        "Deleted real server: 127.0.0.2:80 (127.0.0.1:80)"
    )
    assert wording.quiescent_real_message(real, virtual) == (
        "Quiescent real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 0)"
    )
    assert wording.readd_quiescent_message(real, virtual) == (
        "Readd Quiescent real server: 127.0.0.2:80 (127.0.0.1:80) (Weight set to 0)"
    )
    assert wording.soft_failure_message(real, "tcp:127.0.0.1:80", 1, 2) == (
        "Soft failure real server: 127.0.0.2:80 (tcp:127.0.0.1:80) failure 1/2"
    )
    assert wording.reset_soft_failure_message(real, "tcp:127.0.0.1:80") == (
        "Resetting soft failure count: 127.0.0.2:80 (tcp:127.0.0.1:80)"
    )
    assert wording.added_fallback_message("127.0.0.9:80", virtual) == (
        "Added fallback server: 127.0.0.9:80 (127.0.0.1:80) (Weight set to 1)"
    )
    assert wording.deleted_fallback_message("127.0.0.9:80", virtual) == (
        "Deleted fallback server: 127.0.0.9:80 (127.0.0.1:80)"
    )
    assert wording.purged_real_message(real, virtual, "start") == (
        "Purged real server (start): 127.0.0.2:80 (127.0.0.1:80)"
    )
    assert (
        wording.purged_virtual_message(virtual, "stop")
        == "Purged virtual server (stop): 127.0.0.1:80"
    )
    assert wording.added_virtual_message(virtual) == "Added virtual server: 127.0.0.1:80"
    assert wording.changed_virtual_message(virtual) == "Changed virtual server: 127.0.0.1:80"
    assert wording.inaccessible_real_message(real, virtual) == (
        "Inaccessible real server: 127.0.0.2:80 (127.0.0.1:80)"
    )
    assert wording.hostport(ip_address("::1"), 53) == "[::1]:53"
    assert wording.hostport("[::1]", 53) == "[::1]:53"


def test_process_lines() -> None:
    assert wording.invoked_message(["/usr/sbin/ldirectord", "x.cf", "start"]) == (
        "Invoking ldirectord invoked as: /usr/sbin/ldirectord x.cf start "
    )
    assert wording.starting_message(None).startswith("Starting Linux Director v")
    assert wording.starting_message(None).endswith(" as daemon")
    assert wording.starting_message(42).endswith(" with pid: 42")
    assert wording.terminated_message("TERM") == "Linux Director Daemon terminated on signal: TERM"
    assert wording.reloading_message() == "Reloading Linux Director Daemon config on signal"
    assert wording.stopped_message("/etc/ha.d/x.cf") == "ldirectord is stopped for /etc/ha.d/x.cf"
    assert wording.config_changed_message("/x.cf", True) == (
        "Configuration file '/x.cf' has changed on disk",
        " - reread new configuration",
    )
    assert wording.config_changed_message("/x.cf", False)[1] == " - ignore new configuration"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("login failed for passwd=hunter2", "login failed for passwd=********"),
        ('passwd="two words"', "passwd=********"),
        ("Password: hunter2 rejected", "Password: ******** rejected"),
        ("mysql://user:hunter2@127.0.0.1/db", "mysql://user:********@127.0.0.1/db"),
        ("the server said hunter2 back", "the server said ******** back"),
        ("radius secret=s3cr3t", "radius secret=********"),
        ("nothing to hide", "nothing to hide"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text, {"hunter2"}) == expected


def test_no_secret_reaches_any_destination(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    secret_filter = logs.configure(logs.LogFile(path), "x.cf", secrets={"hunter2"})
    log = logging.getLogger(wording.LOGGER_NAME)
    log.info("check of %s failed: %s", "127.0.0.2:3306", "access denied for hunter2")
    try:
        raise RuntimeError("driver said: password hunter2 is wrong")
    except RuntimeError:
        log.exception("check crashed")
    secret_filter.secrets = frozenset({"n3w-s3cret"})  # a reload brings new secrets
    log.info("after reload: n3w-s3cret")
    text = path.read_text()
    assert "hunter2" not in text and "n3w-s3cret" not in text
    assert "access denied for ********" in text
    assert "RuntimeError: driver said: password ******** is wrong" in text
    assert "after reload: ********" in text


def test_syslog_without_a_syslog_daemon_keeps_lines_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logs.Syslog("daemon"), "x.cf", syslog_address=str(tmp_path / "no-syslogd"))
    logging.getLogger(wording.LOGGER_NAME).info("still here")
    assert capsys.readouterr().err == f"ldirectord[{os.getpid()}]: still here\n"


def _log_in_a_thread(*lines: str) -> threading.Thread:
    """Log ``lines`` from a thread, so a handler that blocks cannot hang the test."""
    log = logging.getLogger(wording.LOGGER_NAME)

    def emit() -> None:
        for line in lines:
            log.info(line)

    thread = threading.Thread(target=emit, daemon=True)
    thread.start()
    thread.join(1.0)
    return thread


def _unblock(fifo: Path) -> None:
    """Open ``fifo`` for reading and drain it: a writer stuck on it gets through."""
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        time.sleep(0.2)
        with contextlib.suppress(BlockingIOError):
            os.read(fd, 65536)
    finally:
        os.close(fd)


def test_a_fifo_logfile_is_refused_without_waiting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No reader: an open() that waits would hang ``start`` at its first line."""
    fifo = tmp_path / "ldirectord.log"
    os.mkfifo(fifo)
    logs.configure(logs.LogFile(fifo), "x.cf")
    thread = _log_in_a_thread("first", "second")
    if thread.is_alive():
        _unblock(fifo)
    assert not thread.is_alive(), "logging to a FIFO blocked"
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"logfile {fifo}: a FIFO, not a regular file: logging to stderr"
    assert [line.split("] ", 1)[1] for line in err[1:]] == ["first", "second"]


def test_a_fifo_logfile_with_a_reader_gets_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "ldirectord.log"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        logs.configure(logs.LogFile(fifo), "x.cf")
        assert not _log_in_a_thread("not for the pipe").is_alive()
        assert os.read(reader, 4096) == b""  # open, but nothing was written to it
    finally:
        os.close(reader)
    assert "a FIFO, not a regular file" in capsys.readouterr().err


def test_a_symlinked_logfile_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A link planted where the log goes must not make the daemon append to what it names."""
    target = tmp_path / "shadow"
    target.write_text("root only\n")
    link = tmp_path / "ldirectord.log"
    link.symlink_to(target)
    logs.configure(logs.LogFile(link), "x.cf")
    logging.getLogger(wording.LOGGER_NAME).info("appended?")
    assert target.read_text() == "root only\n"
    err = capsys.readouterr().err
    assert f"logfile {link}: a symbolic link, not a regular file: logging to stderr\n" in err
    assert err.endswith("] appended?\n")


def test_a_syslog_daemon_that_stopped_reading_never_blocks_a_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)  # bound, never read: its queue fills up
        logs.configure(logs.Syslog("local0"), "x.cf", syslog_address=address)
        log = logging.getLogger(wording.LOGGER_NAME)
        started = time.monotonic()
        for n in range(2000):  # far more than a unix datagram queue holds
            log.info("line %d %s", n, "x" * 200)
        elapsed = time.monotonic() - started
        queued = 0
        server.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while server.recv(4096):
                queued += 1
    spilled = capsys.readouterr().err.count("\n")
    assert elapsed < 5
    assert queued > 0 and spilled > 0
    assert queued + spilled == 2000  # every line went one way or the other
