"""The persisted roles of the sync daemons ldirector started: only these may it stop.

Kept beside the owned-services set (``ldirector.state.owned``), for the same reason: a restarted
ldirector must still know that the daemon running is its own, and a daemon started by an
operator or another manager must never look like one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ldirector.ipvs.sync import DaemonState
from ldirector.state.atomicfile import StateFile
from ldirector.state.owned import STATE_DIR

log = logging.getLogger(__name__)

#: The file holds a word or two; anything longer is not ours to read.
MAX_BYTES = 4096
_ROLES = {state.word: state for state in DaemonState}


def default_path(config_path: str | os.PathLike[str], directory: Path = STATE_DIR) -> Path:
    """``/run/ldirector/<config file name>.syncd``, one per configuration like the owned set."""
    return directory / f"{Path(config_path).name}.syncd"


class SyncOwnedStore:
    """Reads the started-daemons file (one role a line) and rewrites it best effort.

    ``path=None`` keeps the roles in memory only (dry runs, tests).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: frozenset[DaemonState] = frozenset()
        self._file = StateFile(path, "started sync daemons") if path is not None else None

    def load(self) -> frozenset[DaemonState]:
        """The saved roles; none when there is no file. Unknown lines are skipped with a warning."""
        if self.path is None:
            return self._memory
        try:
            with self.path.open("rb") as handle:
                data = handle.read(MAX_BYTES)
        except FileNotFoundError:
            return frozenset()
        except OSError as exc:
            log.warning("cannot read started sync daemons from %s: %s", self.path, exc.strerror)
            return frozenset()
        roles: set[DaemonState] = set()
        for number, raw in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line in _ROLES:
                roles.add(_ROLES[line])
            else:
                log.warning("%s:%d: not a sync daemon role (ignored)", self.path, number)
        return frozenset(roles)

    def save(self, roles: Iterable[DaemonState]) -> bool:
        """Replace the saved roles; False when the file could not be written (retried later)."""
        ordered = sorted(set(roles))
        if self._file is None:
            self._memory = frozenset(ordered)
            return True
        body = "# IPVS sync daemons started by ldirector (do not edit while it runs)\n"
        body += "".join(f"{state.word}\n" for state in ordered)
        return self._file.write(body)

    def flush(self) -> bool:
        """Retry a save that failed; True when the file is up to date."""
        return self._file is None or self._file.flush()
