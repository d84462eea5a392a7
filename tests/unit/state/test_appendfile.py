"""Appending to the log file or a monitorfile: regular files only, never followed or waited on."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from ldirector.state.appendfile import RefusedFile, append


def test_appends_to_a_regular_file_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    append(path, b"one\n")
    append(path, b"two\n")
    assert path.read_bytes() == b"one\ntwo\n"


def _fifo(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "fifo")
    return tmp_path / "fifo"


def _link(tmp_path: Path) -> Path:
    (tmp_path / "target").write_text("kept\n")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    return tmp_path / "link"


def _dangling(tmp_path: Path) -> Path:
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    return tmp_path / "link"


def _directory(tmp_path: Path) -> Path:
    (tmp_path / "dir").mkdir()
    return tmp_path / "dir"


def _socket(tmp_path: Path) -> Path:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
    return tmp_path / "sock"


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (_fifo, "a FIFO"),
        (_link, "a symbolic link"),
        (_dangling, "a symbolic link"),
        (_directory, "a directory"),
        (_socket, "a socket"),
        (lambda _: Path("/dev/null"), "a device"),
    ],
)
def test_anything_but_a_regular_file_is_refused(
    tmp_path: Path, make: Callable[[Path], Path], kind: str
) -> None:
    path = make(tmp_path)
    with pytest.raises(RefusedFile) as info:
        append(path, b"line\n")
    assert info.value.strerror == f"{kind}, not a regular file"
    assert not (tmp_path / "nowhere").exists()  # a dangling link is not followed to create
    if (tmp_path / "target").exists():
        assert (tmp_path / "target").read_text() == "kept\n"
