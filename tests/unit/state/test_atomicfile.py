"""replace_file: mkstemp's guarantees for the temporary file, without tempfile."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ldirector.state import atomicfile


def test_the_file_is_replaced_whole_private_and_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ldirectord.cf.owned"
    atomicfile.replace_file(path, "one\n")
    atomicfile.replace_file(path, "two\n")
    assert path.read_text() == "two\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_taken_name_is_never_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another file at the random name (or a link planted there) is left alone."""
    path = tmp_path / "owned"
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    taken = tmp_path / f".{path.name}.{'00' * 6}"
    taken.symlink_to(victim)
    names = iter([b"\0" * 6, b"\1" * 6])
    monkeypatch.setattr(os, "urandom", lambda n: next(names))
    atomicfile.replace_file(path, "new\n")
    assert path.read_text() == "new\n" and victim.read_text() == "keep\n"
    assert taken.is_symlink()


def test_no_free_name_is_an_error_not_a_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "owned"
    (tmp_path / f".{path.name}.{'00' * 6}").write_text("")
    monkeypatch.setattr(os, "urandom", lambda n: b"\0" * n)
    with pytest.raises(FileExistsError):
        atomicfile.replace_file(path, "new\n")
    assert not path.exists()
