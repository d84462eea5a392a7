"""Small state files ldirector keeps across restarts (the owned-services set, operator holds).

``replace_file`` makes a crash mid-write leave the old file whole. ``StateFile`` makes a write
best effort: the daemon's memory is the truth and the file a copy for the next start, so a full
disk or a read-only directory costs that copy, never a reconcile.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: How many random names a temporary file may try before giving up (tempfile tries 10000).
TEMP_ATTEMPTS = 100


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a synced temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path``, created by this call, mode 0600: ``tempfile.mkstemp``'s
    contract without tempfile, which brings shutil and the compression modules into the start."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(TEMP_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(path.parent))


class StateFile:
    """One state file written best effort; a failed write is kept and tried again.

    A failure is logged once, and again only when the error changes; the write that succeeds
    after it says so. Nothing here raises: a caller retries with :meth:`flush` (cheap when
    nothing is pending) whenever it is convenient, e.g. at every reconcile.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        #: What the file holds, for the log lines ("operator holds", "owned services").
        self.what = what
        self._pending: str | None = None
        self._error: str | None = None

    @property
    def pending(self) -> bool:
        """A write is waiting to be retried."""
        return self._pending is not None

    def write(self, text: str) -> bool:
        """Replace the file with ``text``; False (logged, kept for a retry) when it failed."""
        self._pending = text
        return self.flush()

    def flush(self) -> bool:
        """Retry the pending write, if any; True when the file is up to date."""
        if self._pending is None:
            return True
        try:
            replace_file(self.path, self._pending)
        except OSError as exc:
            error = exc.strerror or str(exc)
            if error != self._error:
                self._error = error
                log.error(
                    "cannot save %s to %s: %s (kept in memory; will retry)",
                    self.what,
                    self.path,
                    error,
                )
            return False
        self._pending = None
        if self._error is not None:
            self._error = None
            log.info("saved %s to %s again", self.what, self.path)
        return True
