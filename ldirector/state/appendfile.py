"""Append to a log-like file (the log file, a monitorfile) without ever blocking or being led.

The file is opened for each line, so logrotate needs no signal, and only a regular file is
written: a FIFO would block the event loop at open() (no reader) or at write() (a full pipe),
and a symbolic link planted in a shared directory could make a root daemon append to any file
it names. Opening never follows the last component and never waits; what is not a regular file
is refused with :class:`RefusedFile`.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

#: Create as ``>>`` does (0666 less the umask); never follow, never wait, never leak to children.
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC
_MODE = 0o666

#: Errors an open gives for what is not a regular file: ELOOP for a symbolic link (O_NOFOLLOW),
#: ENXIO for a FIFO or socket with no reader (O_NONBLOCK), EISDIR for a directory.
_NOT_REGULAR = (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EWOULDBLOCK)


class RefusedFile(OSError):
    """The path is not a regular file; ``str()`` says what it is, in one line."""

    def __init__(self, path: Path, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file", str(path))
        self.kind = kind


def append(path: Path, data: bytes) -> None:
    """Append ``data`` to the regular file ``path`` (created if missing).

    Raises RefusedFile when ``path`` is anything else (symbolic link, FIFO, device, socket,
    directory), OSError when it cannot be written.
    """
    try:
        fd = os.open(path, _FLAGS, _MODE)
    except OSError as exc:
        kind = _kind(path) if exc.errno in _NOT_REGULAR else None
        if kind is not None:
            raise RefusedFile(path, kind) from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise RefusedFile(path, _describe(mode))
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if not written:  # never seen on a regular file; an endless loop would be worse
                raise OSError(errno.EIO, "short write", str(path))
            view = view[written:]
    finally:
        os.close(fd)


def _kind(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file; None when it is (or is gone)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    return None if stat.S_ISREG(mode) else _describe(mode)


def _describe(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
