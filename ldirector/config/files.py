"""Reading a file the config names (a CA bundle, an included keepalived.conf) safely.

A config may name anything: a FIFO would block a read, a directory cannot be read, a device or
a huge file would exhaust memory. Only a regular file is read, and at most ``limit`` bytes.
"""

from __future__ import annotations

import errno
import os
import stat


def read_regular(path: str, limit: int) -> bytes:
    """The contents of the regular file at ``path``; OSError (with a strerror to show) if it
    cannot be read, is not a regular file, or holds more than ``limit`` bytes."""
    # O_NONBLOCK: opening a FIFO must not hang; it is refused below.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = b""
        while len(data) <= limit and (chunk := os.read(fd, limit + 1 - len(data))):
            data += chunk
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit // (1024 * 1024)} MiB")
    return data
