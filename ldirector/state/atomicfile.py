"""Small state files ldirector keeps across restarts (the owned-services set, operator holds).

``replace_file`` makes a crash mid-write leave the old file whole. ``StateFile`` makes a write
best effort: the daemon's memory is the truth and the file a copy for the next start, so a full
disk or a read-only directory costs that copy, never a reconcile.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a synced temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
