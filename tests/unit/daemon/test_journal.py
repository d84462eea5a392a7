"""journald's native protocol: entries, priorities, LDIRECTOR_* fields and the stderr fallback.

A real AF_UNIX datagram socket in a tmp dir stands in for journald; fd 2 is made "the journal"
by pointing ``JOURNAL_STREAM`` at its device and inode, as systemd does.
"""

from __future__ import annotations

import inspect
import io
import logging
import os
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ldirector.config import loads
from ldirector.core import wording
from ldirector.core.desired import RealKey, service_key
from ldirector.core.events import LOG_FIELDS, EventKind, Phase, about_real, fields, purged
from ldirector.daemon import journal, logs
from ldirector.ipvs.types import DestKey
from tests.support.engine_world import World
from tests.support.loggers import restore_ldirector_logger


@pytest.fixture(autouse=True)
def _logger_restored() -> Iterator[None]:
    yield
    restore_ldirector_logger()


@pytest.fixture
def journald(tmp_path: Path) -> Iterator[socket.socket]:
    """A bound datagram socket at ``tmp_path/journal.sock``, read by the test."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(tmp_path / "journal.sock"))
        server.settimeout(5)
        yield server


@pytest.fixture
def stderr_is_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    found = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{found.st_dev}:{found.st_ino}")


def parse(datagram: bytes) -> list[tuple[str, str]]:
    """journald's reading of a datagram: ``KEY=value`` lines and the binary form."""
    fields, rest = [], datagram
    while rest:
        head, newline, rest = rest.partition(b"\n")
        assert newline, "every field ends with a newline"
        if b"=" in head:
            key, _, value = head.partition(b"=")
        else:
            (size,) = struct.unpack("<Q", rest[:8])
            key, value, rest = head, rest[8 : 8 + size], rest[8 + size :]
            assert rest[:1] == b"\n"
            rest = rest[1:]
        fields.append((key.decode(), value.decode()))
    return fields


def drain(server: socket.socket) -> list[bytes]:
    received = []
    server.setblocking(False)
    while True:
        try:
            received.append(server.recv(1 << 20))
        except BlockingIOError:
            return received


def test_priority_follows_the_level() -> None:
    levels = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)
    assert [journal.priority(n) for n in levels] == [7, 6, 4, 3, 2]
    assert [journal.priority(n) for n in (5, 25, 60)] == [7, 6, 2]  # levels in between


def test_encode_uses_the_binary_form_only_for_values_with_a_newline() -> None:
    assert journal.encode([("MESSAGE", "one line"), ("PRIORITY", "3")]) == (
        b"MESSAGE=one line\nPRIORITY=3\n"
    )
    assert journal.encode([("MESSAGE", "a\nb")]) == (
        b"MESSAGE\n" + (3).to_bytes(8, "little") + b"a\nb\n"
    )


def test_stream_is_journal_compares_device_and_inode_of_the_fd(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w") as f:
        found = os.fstat(f.fileno())
        same = {"JOURNAL_STREAM": f"{found.st_dev}:{found.st_ino}"}
        assert journal.stream_is_journal(f.fileno(), same)
        assert not journal.stream_is_journal(f.fileno(), {"JOURNAL_STREAM": "1:2"})
        assert not journal.stream_is_journal(f.fileno(), {"JOURNAL_STREAM": "garbage"})
        assert not journal.stream_is_journal(f.fileno(), {})
    assert not journal.stream_is_journal(987654, same)  # a closed fd is no journal


@pytest.mark.usefixtures("stderr_is_the_journal")
def test_an_error_line_is_an_entry_at_priority_3(
    journald: socket.socket, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logs.Stderr(), "x.cf", journal_socket=str(tmp_path / "journal.sock"))
    line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
    logging.getLogger("ldirector.engine.engine").error("cannot reconcile the IPVS table: %s", "x")
    assert journald.recv(65536) == (
        b"MESSAGE=cannot reconcile the IPVS table: x\n"
        b"PRIORITY=3\n"
        b"SYSLOG_IDENTIFIER=ldirectord\n"
        + f"CODE_FILE={__file__}\nCODE_LINE={line}\n".encode()
        + b"CODE_FUNC=test_an_error_line_is_an_entry_at_priority_3\n"
    )
    assert capsys.readouterr().err == ""  # the entry, not a stream line as well


@pytest.mark.usefixtures("stderr_is_the_journal")
def test_levels_and_a_traceback_in_the_journal(journald: socket.socket, tmp_path: Path) -> None:
    logs.configure(logs.Stderr(), "x.cf", debug=True, journal_socket=str(tmp_path / "journal.sock"))
    log = logging.getLogger(wording.LOGGER_NAME)
    log.debug("check detail")
    log.warning("maintenancedir /x: Permission denied")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("engine: internal error")
    entries = [dict(parse(journald.recv(65536))) for _ in range(3)]
    assert [(e["PRIORITY"], e["MESSAGE"].split("\n")[0]) for e in entries] == [
        ("7", "check detail"),  # the priority says debug: no "DEBUG: " in the text
        ("4", "maintenancedir /x: Permission denied"),
        ("3", "engine: internal error"),
    ]
    assert entries[2]["MESSAGE"].endswith("RuntimeError: boom")  # one entry, binary form


async def test_added_real_server_carries_the_ldirector_fields(
    journald: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = os.fstat(1)
    monkeypatch.setenv("JOURNAL_STREAM", f"{found.st_dev}:{found.st_ino}")
    logs.configure(logs.Stdout(), "x.cf", journal_socket=str(tmp_path / "journal.sock"))
    w = World(
        "fallback=127.0.0.1:80 gate\nvirtual=127.0.0.100:80\n"
        "\treal=127.0.0.2:8080 masq 5\n\tservice=http\n",
        tmp_path,
        up={"127.0.0.2:8080": True},
    )
    await w.engine.start()
    await w.clock.advance(0.1)
    await w.engine.shutdown()
    entries = [parse(d) for d in drain(journald)]
    by_message = {dict(e)["MESSAGE"]: e for e in entries}
    added = by_message["Added real server: 127.0.0.2:8080 (127.0.0.100:80) (Weight set to 5)"]
    assert [f for f in added if f[0].startswith(("LDIRECTOR_", "PRIORITY"))] == [
        ("PRIORITY", "6"),
        ("LDIRECTOR_EVENT", "added"),
        ("LDIRECTOR_VIRTUAL", "tcp:127.0.0.100:80"),
        ("LDIRECTOR_REAL", "127.0.0.2:8080"),
        ("LDIRECTOR_CHECK", "http"),
    ]
    fallback = dict(
        by_message["Added fallback server: 127.0.0.1:80 (127.0.0.100:80) (Weight set to 1)"]
    )
    assert fallback["LDIRECTOR_EVENT"] == "fallback-on"
    assert fallback["LDIRECTOR_FALLBACK"] == "127.0.0.1:80"
    assert "LDIRECTOR_REAL" not in fallback
    # Lines that are not about a real carry no LDIRECTOR_* field at all.
    virtual = by_message["Added virtual server: 127.0.0.100:80"]
    assert not [k for k, _ in virtual if k.startswith("LDIRECTOR_")]


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        ("\tchecktype=connect\n", "connect"),
        ("\tchecktype=external\n", "external"),
        ("\tchecktype=negotiate\n\tservice=smtp\n", "smtp"),
        ("\tchecktype=3\n\tservice=http\n", "http"),
    ],
)
def test_a_reals_fields_name_the_check_its_virtual_runs(checks: str, expected: str) -> None:
    virtual = loads(f"virtual=127.0.0.100:25\n\treal=127.0.0.2:25 masq\n{checks}", "x.cf").virtuals[
        0
    ]
    real = virtual.reals[0]
    key = RealKey(service_key(virtual), DestKey(real.address, real.port))
    assert fields(about_real(EventKind.DELETED, virtual, key, real)) == {
        "event": "deleted",
        "virtual": "tcp:127.0.0.100:25",
        "real": "127.0.0.2:25",
        "check": expected,
    }
    # A purged real may be one the config never had: no check is said to have run on it.
    assert "check" not in fields(purged(virtual, key, Phase.START))


def test_without_the_journal_stderr_lines_stay_plain(
    journald: socket.socket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A terminal or a pipe gets no ``<N>``: only journald reads that prefix."""
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # another stream: stderr was redirected
    logs.configure(logs.Stderr(), "x.cf", journal_socket=str(tmp_path / "journal.sock"))
    logging.getLogger(wording.LOGGER_NAME).error("plain")
    assert capsys.readouterr().err == "plain\n"
    assert drain(journald) == []


@pytest.mark.usefixtures("stderr_is_the_journal")
def test_no_journal_socket_falls_back_to_stderr_with_the_priority_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logs.Stderr(), "x.cf", journal_socket=str(tmp_path / "absent.sock"))
    log = logging.getLogger(wording.LOGGER_NAME)
    log.error("Deleted real server: 127.0.0.2:80 (127.0.0.1:80)")
    log.info("second")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("crashed")
    err = capsys.readouterr().err.splitlines()
    assert err[:3] == [
        "<3>Deleted real server: 127.0.0.2:80 (127.0.0.1:80)",
        "<6>second",
        "<3>crashed",
    ]
    # Every line of the traceback keeps its priority: journald reads the stream by lines.
    assert all(line.startswith("<3>") for line in err[3:]) and err[-1] == "<3>ValueError: bad"


@pytest.mark.usefixtures("stderr_is_the_journal")
def test_a_full_journal_never_blocks_and_loses_no_line(
    journald: socket.socket, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """journald that does not read: the socket fills, lines go to stderr, nothing waits."""
    logs.configure(logs.Stderr(), "x.cf", journal_socket=str(tmp_path / "journal.sock"))
    log = logging.getLogger(wording.LOGGER_NAME)
    count, padding = 1500, "x" * 1000

    def emit() -> None:
        for n in range(count):
            log.info("line %d %s", n, padding)

    thread = threading.Thread(target=emit, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "logging blocked on a full journal socket"
    sent = [dict(parse(d))["MESSAGE"] for d in drain(journald)]
    fallen = [line.removeprefix("<6>") for line in capsys.readouterr().err.splitlines()]
    assert fallen, "the socket never filled: the test proves nothing"
    assert sorted(sent + fallen) == sorted(f"line {n} {padding}" for n in range(count))


@pytest.mark.usefixtures("stderr_is_the_journal")
def test_a_1_mb_message_is_bounded(journald: socket.socket, tmp_path: Path) -> None:
    logs.configure(logs.Stderr(), "x.cf", journal_socket=str(tmp_path / "journal.sock"))
    logging.getLogger(wording.LOGGER_NAME).info("huge: %s", "é" * (1 << 19))  # 1 MB of UTF-8
    datagram = journald.recv(1 << 21)
    message = dict(parse(datagram))["MESSAGE"]
    assert len(datagram) < 64 * 1024
    assert len(message.encode()) <= journal.MAX_MESSAGE
    assert message.startswith("huge: éé") and message.endswith("é [truncated]")


@pytest.mark.usefixtures("stderr_is_the_journal")
def test_field_values_are_single_line_bounded_and_redacted(
    journald: socket.socket, tmp_path: Path
) -> None:
    logs.configure(
        logs.Stderr(),
        "x.cf",
        secrets={"hunter2"},
        journal_socket=str(tmp_path / "journal.sock"),
    )
    extra = {"real": "10.0.0.1:80\nFAKE=1", "check": "y" * 5000, "bad-name": "z", "x": "hunter2"}
    logging.getLogger(wording.LOGGER_NAME).info("fields", extra={LOG_FIELDS: extra})
    fields = [f for f in parse(journald.recv(65536)) if f[0].startswith("LDIRECTOR_")]
    assert fields[0] == ("LDIRECTOR_REAL", "10.0.0.1:80 FAKE=1")
    assert fields[1][0] == "LDIRECTOR_CHECK" and len(fields[1][1]) == journal.MAX_FIELD
    assert fields[2] == ("LDIRECTOR_X", "********")
    assert len(fields) == 3  # LDIRECTOR_BAD-NAME is no journal field name


def test_a_broken_fallback_never_raises(tmp_path: Path) -> None:
    stream = io.StringIO()
    stream.close()
    handler = journal.JournalHandler("ldirectord", stream, socket_path=str(tmp_path / "absent"))
    record = logging.LogRecord("ldirector", logging.ERROR, __file__, 1, "lost", None, None)
    handler.handle(record)  # no socket, a closed stream: nothing raises into the engine
    handler.close()


@pytest.mark.usefixtures("stderr_is_the_journal")
def test_a_syslog_facility_under_systemd_is_a_journal_entry_with_that_facility(
    journald: socket.socket, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(logs.Syslog("local0"), "x.cf", journal_socket=str(tmp_path / "journal.sock"))
    logging.getLogger("ldirector.engine.engine").warning("real server is slow")
    entry = dict(parse(journald.recv(65536)))
    assert entry["MESSAGE"] == "real server is slow"
    assert (entry["PRIORITY"], entry["SYSLOG_FACILITY"]) == ("4", "16")  # warning, local0
    assert entry["SYSLOG_IDENTIFIER"] == "ldirectord"
    assert capsys.readouterr().err == ""
