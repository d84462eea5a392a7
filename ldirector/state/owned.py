"""The persisted set of IPVS services ldirector owns: reconcile may touch these and no others.

Sits beside the engine: it widens the owned set before creating a service and narrows it once
a service is gone, so a virtual removed from the config while the daemon was down is still
cleaned up at the next start. Services ldirector never created are never in it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ldirector.ipvs.types import ServiceKey, parse_service_key
from ldirector.state.atomicfile import StateFile

log = logging.getLogger(__name__)

#: /run is right for this: it is cleared at boot, exactly when the kernel table is.
STATE_DIR = Path("/run/ldirector")


def default_path(config_path: str | os.PathLike[str], directory: Path = STATE_DIR) -> Path:
    """``/run/ldirector/<config file name>.owned``: one set per configuration, as ldirectord
    keeps one pid file per configuration."""
    return directory / f"{Path(config_path).name}.owned"


class OwnedStore:
    """Reads the owned-services file (one service key a line) and rewrites it best effort.

    ``path=None`` keeps the set in memory only (dry runs, tests).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: frozenset[ServiceKey] = frozenset()
        self._file = StateFile(path, "owned services") if path is not None else None

    def load(self) -> frozenset[ServiceKey]:
        """The saved set; empty when there is none. Unreadable lines are skipped with a warning."""
        if self.path is None:
            return self._memory
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return frozenset()
        except OSError as exc:
            log.warning("cannot read owned services from %s: %s", self.path, exc.strerror)
            return frozenset()
        keys: set[ServiceKey] = set()
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                keys.add(parse_service_key(line))
            except ValueError as exc:
                log.warning("%s:%d: %s (ignored)", self.path, number, exc)
        return frozenset(keys)

    def save(self, keys: Iterable[ServiceKey]) -> bool:
        """Replace the saved set (a crash mid-write leaves the old file whole); False when it
        could not be written, which is logged once and retried by :meth:`flush`."""
        ordered = sorted(set(keys), key=lambda k: k.sort_key)
        if self._file is None:
            self._memory = frozenset(ordered)
            return True
        body = "# IPVS services managed by ldirector (do not edit while it runs)\n"
        body += "".join(f"{key}\n" for key in ordered)
        return self._file.write(body)

    def flush(self) -> bool:
        """Retry a save that failed; True when the file is up to date."""
        return self._file is None or self._file.flush()
