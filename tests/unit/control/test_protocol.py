"""The control socket's protocol: framing, the verbs, and the blocking client."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from ldirector.control import protocol
from ldirector.control.protocol import (
    HOLD_VERBS,
    ControlError,
    FrameError,
    Verb,
    decode,
    encode,
    request,
    socket_path,
)


def test_socket_path_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LDIRECTOR_CONTROL_DIR", raising=False)
    assert socket_path("ldirectord.cf") == Path("/run/ldirector/ldirectord.cf.sock")
    monkeypatch.setenv("LDIRECTOR_CONTROL_DIR", str(tmp_path))
    assert socket_path("web.cf") == tmp_path / "web.cf.sock"
    assert socket_path("web.cf", tmp_path / "x") == tmp_path / "x" / "web.cf.sock"


def test_verbs() -> None:
    assert [v.value for v in Verb] == ["ping", "status", "disable", "enable", "drain"]
    assert HOLD_VERBS == (Verb.DISABLE, Verb.ENABLE, Verb.DRAIN)


def test_one_message_one_line() -> None:
    line = encode({"cmd": Verb.STATUS, "real": "a\nb"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert decode(line) == {"cmd": "status", "real": "a\nb"}


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"garbage", "not a JSON object"),
        (b"[1]", "not a JSON object"),
        (b"\xff\xfe", "not a JSON object"),
        (b"[" * 20_000 + b"]" * 20_000, "not a JSON object (nested too deeply)"),
        (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, "nested too deeply"),
    ],
)
def test_anything_else_is_a_frame_error(line: bytes, error: str) -> None:
    with pytest.raises(FrameError, match=error.replace("(", r"\(").replace(")", r"\)")):
        decode(line)


def serve_once(path: Path, reply: bytes) -> threading.Thread:
    """A one-shot server that reads one request line and answers ``reply``."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1 << 16)
                conn.sendall(reply)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_client_reads_a_reply(tmp_path: Path) -> None:
    thread = serve_once(tmp_path / "s", b'{"ok": true, "pid": 7}\n')
    assert request(tmp_path / "s", {"cmd": "ping"}, timeout=5) == {"ok": True, "pid": 7}
    thread.join(5)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"nope\n", "the daemon sent an unreadable reply"),
        (b'{"ok": false, "error": "bad \\u001b[2J thing"}\n', r"bad \\x1b\[2J thing"),
        (b'{"ok": false}\n', "the daemon refused the request"),
    ],
)
def test_the_client_turns_failures_into_one_line(tmp_path: Path, reply: bytes, error: str) -> None:
    thread = serve_once(tmp_path / "s", reply)
    with pytest.raises(ControlError, match=error) as info:
        request(tmp_path / "s", {"cmd": "ping"}, timeout=5)
    assert "\x1b" not in str(info.value)
    thread.join(5)


def test_the_client_bounds_what_it_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "MAX_REPLY", 1000)
    thread = serve_once(tmp_path / "s", b'{"ok": true, "x": "' + b"x" * 5000 + b'"}\n')
    with pytest.raises(ControlError, match="oversized reply"):
        request(tmp_path / "s", {"cmd": "ping"}, timeout=5)
    thread.join(5)
