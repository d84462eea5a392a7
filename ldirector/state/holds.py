"""The live operator holds of one daemon, and the file that keeps them across restarts.

The engine hands the current holds to ``desired`` and asks :meth:`Holds.settle` at every
reconcile whether a drain has finished (the rules are ``ldirector.core.holds``). Holds are saved
in ``/var/lib/ldirector/<CFGNAME>.manual.json`` so a restart, or a reboot, keeps them: an
operator who took a server out for work does not want it back because the daemon restarted.

Memory is the truth: a change takes effect at once and the file is written right after, before
the next reconcile applies it. A write that fails is logged once and retried at the next
change or reconcile; it never stops the reconcile.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

from ldirector.core import holds as rules
from ldirector.core.desired import RealKey
from ldirector.core.holds import Hold, HoldEntry
from ldirector.ipvs.types import DestKey, IpvsTable, ServiceKey, parse_service_key
from ldirector.state.atomicfile import StateFile

log = logging.getLogger(__name__)

#: Where holds survive restarts and reboots (unlike /run, which a reboot clears).
STATE_DIR = Path("/var/lib/ldirector")

FORMAT_VERSION = 1


def default_path(cfgname: str, directory: Path = STATE_DIR) -> Path:
    """``/var/lib/ldirector/<CFGNAME>.manual.json``."""
    return directory / f"{cfgname}.manual.json"


class HoldsStore:
    """Reads the holds file and rewrites it best effort; ``path=None`` keeps nothing on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file = StateFile(path, "operator holds") if path is not None else None

    def load(self) -> dict[RealKey, HoldEntry]:
        """The saved holds; bad entries are skipped with a warning, never fatal."""
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read operator holds from %s: %s", self.path, exc)
            return {}
        entries = data.get("overrides") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            log.warning("%s: no overrides list (ignored)", self.path)
            return {}
        result: dict[RealKey, HoldEntry] = {}
        for number, item in enumerate(entries, 1):
            try:
                key, entry = _decode(item)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("%s: entry %d: %s (ignored)", self.path, number, exc)
                continue
            result[key] = entry
        return result

    def save(self, entries: Mapping[RealKey, HoldEntry]) -> bool:
        """Replace the file (a crash mid-write leaves the old one whole); False when it could
        not be written, which is logged once and retried by :meth:`flush`."""
        if self._file is None:
            return True
        items = [_encode(k, e) for k, e in sorted(entries.items(), key=lambda kv: _order(kv[0]))]
        body = json.dumps({"version": FORMAT_VERSION, "overrides": items}, indent=1) + "\n"
        return self._file.write(body)

    def flush(self) -> bool:
        """Retry a save that failed; True when the file is up to date."""
        return self._file is None or self._file.flush()


def _order(key: RealKey) -> tuple[object, ...]:
    return (key.service.sort_key, key.dest.sort_key)


def _encode(key: RealKey, entry: HoldEntry) -> dict[str, object]:
    item: dict[str, object] = {
        "virtual": str(key.service),
        "real": str(key.dest),
        "state": entry.hold.value,
        "since": entry.since,
    }
    if entry.deadline is not None:
        item["deadline"] = entry.deadline
    return item


def _decode(item: object) -> tuple[RealKey, HoldEntry]:
    if not isinstance(item, dict):
        raise TypeError("not an object")
    service = parse_service_key(str(item["virtual"]))
    address, port = rules.parse_real(str(item["real"]))
    if port is None:
        raise ValueError(f"real {item['real']!r} has no port")
    deadline = item.get("deadline")
    return RealKey(service, DestKey(address, port)), HoldEntry(
        Hold(item["state"]),
        float(item["since"]),
        float(deadline) if deadline is not None else None,
    )


class Holds:
    """The live holds of one daemon, saved (best effort) after every change."""

    def __init__(
        self, store: HoldsStore | None = None, *, now: Callable[[], float] = time.time
    ) -> None:
        self.store = store or HoldsStore(None)
        self._now = now
        self.current: dict[RealKey, HoldEntry] = self.store.load()
        self._view: Mapping[RealKey, Hold] = self._freeze()

    def __iter__(self) -> Iterator[RealKey]:
        return iter(self.current)

    def view(self) -> Mapping[RealKey, Hold]:
        """What ``desired`` needs: each held real and how (a cached read-only view)."""
        return self._view

    def disable(self, key: RealKey) -> None:
        """Take the real out now."""
        self._replace({**self.current, key: rules.disabled(self._now())})

    def drain(self, key: RealKey, timeout: float = rules.DEFAULT_DRAIN_TIMEOUT) -> None:
        """Weight 0 until its connections end or ``timeout`` seconds pass, then out."""
        self._replace({**self.current, key: rules.draining(self._now(), timeout)})

    def enable(self, key: RealKey) -> bool:
        """Clear any hold; False when there was none."""
        if key not in self.current:
            return False
        changed = dict(self.current)
        del changed[key]
        self._replace(changed)
        return True

    def settle(
        self, actual: IpvsTable, within: Collection[ServiceKey] | None = None
    ) -> list[RealKey]:
        """Turn finished drains into disables; return the reals whose drain ended.

        ``within``: ``actual`` holds just these services. Called at every reconcile, so a save
        that failed earlier is retried here too.
        """
        done = rules.settle(self.current, actual, self._now(), within)
        if done:
            for key in done:
                log.info("drain of %s finished: removing it", key)
            self._replace({**self.current, **done})
        else:
            self.store.flush()
        return list(done)

    def _replace(self, entries: dict[RealKey, HoldEntry]) -> None:
        self.current = entries
        self._view = self._freeze()
        self.store.save(entries)

    def _freeze(self) -> Mapping[RealKey, Hold]:
        return MappingProxyType({k: e.hold for k, e in self.current.items()})
