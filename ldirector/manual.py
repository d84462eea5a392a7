"""Manual overrides: an operator's ``disable``, ``drain`` and ``enable`` of one real server.

Sits beside the engine, like the maintenance directory: the engine hands the current holds to
``desired`` (a disabled real is left out of the table, a draining one kept at weight 0) and asks
:meth:`ManualOverrides.settle` at every reconcile whether a drain has finished. Overrides are
saved in ``/var/lib/ldirector/<CFGNAME>.manual.json`` so a restart, or a reboot, keeps them: an
operator who took a server out for work does not want it back because the daemon restarted.

Disable removes the real even under ``quiescent=yes``: it is an explicit order, and the gentle
way out is ``drain``. A drain ends when the kernel shows no active and no inactive connection
left on the real (or no longer holds it), or when its time bound passes; the real then stays
out, disabled, until ``enable``.
"""

from __future__ import annotations

import enum
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from types import MappingProxyType

from ldirector.atomicfile import replace_file
from ldirector.config.model import Config
from ldirector.desired import RealKey, real_key, service_key
from ldirector.ipvs.types import (
    DestKey,
    Family,
    FwmarkServiceKey,
    InetServiceKey,
    IPAddress,
    IpvsTable,
    Protocol,
    ServiceKey,
    parse_service_key,
)

log = logging.getLogger(__name__)

#: Where overrides survive restarts and reboots (unlike /run, which a reboot clears).
STATE_DIR = Path("/var/lib/ldirector")

#: Seconds a drain waits for connections to end before the real is removed anyway.
DEFAULT_DRAIN_TIMEOUT = 300.0

FORMAT_VERSION = 1


class Hold(enum.StrEnum):
    """How an operator holds a real out. ``desired`` reads these values as plain strings."""

    DISABLED = "disabled"
    DRAINING = "draining"


class ManualError(ValueError):
    """A bad VIRTUAL or REAL: ``str()`` is one line an operator can act on."""


def default_path(cfgname: str, directory: Path = STATE_DIR) -> Path:
    """``/var/lib/ldirector/<CFGNAME>.manual.json``."""
    return directory / f"{cfgname}.manual.json"


# --- naming reals on the command line --------------------------------------------------------


def parse_virtual(text: str) -> ServiceKey:
    """A virtual as ldirectord writes it: ``127.0.0.1:80``, ``tcp:127.0.0.1:80``,
    ``udp:[::1]:53``, ``fwm:100`` (``fwm6:100`` for IPv6), or a bare mark ``100``."""
    text = text.strip()
    if text.isdigit():
        text = f"fwm:{text}"
    kind, sep, _ = text.partition(":")
    if sep and kind.lower() in ("tcp", "udp", "sctp", "fwm", "fwm6"):
        try:
            return parse_service_key(kind.lower() + text[len(kind) :])
        except ValueError:
            raise ManualError(f"not a virtual service: {text!r}") from None
    try:
        address, port = _hostport(text)
    except ManualError:
        raise ManualError(
            f"not a virtual service: {text!r} (expected IP:PORT, tcp:IP:PORT, udp:IP:PORT"
            " or fwm:MARK)"
        ) from None
    if port is None:
        raise ManualError(f"not a virtual service: {text!r} (no port)")
    return InetServiceKey(Protocol.TCP, address, port)


def parse_real(text: str) -> tuple[IPAddress, int | None]:
    """A real as ``127.0.0.1:8080``, ``[::1]:8080`` or a bare address (any port)."""
    try:
        return _hostport(text.strip())
    except ManualError:
        raise ManualError(f"not a real server: {text!r} (expected IP:PORT or IP)") from None


def _hostport(text: str) -> tuple[IPAddress, int | None]:
    host, port_text = text, ""
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ManualError(text)
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    try:
        address = ip_address(host)
        port = int(port_text) if port_text else None
    except ValueError:
        raise ManualError(text) from None
    if port is not None and not 0 <= port <= 65535:
        raise ManualError(text)
    return address, port


def resolve(config: Config, virtual: str, real: str) -> RealKey:
    """The configured real named by the command line, or ManualError saying what is wrong."""
    want = parse_virtual(virtual)
    address, port = parse_real(real)
    virtuals = [v for v in config.virtuals if service_key(v) == want]
    if not virtuals and isinstance(want, FwmarkServiceKey) and address.version == 6:
        want = FwmarkServiceKey(Family.INET6, want.fwmark)
        virtuals = [v for v in config.virtuals if service_key(v) == want]
    if not virtuals:
        raise ManualError(f"no virtual service {want} in the configuration")
    found: dict[RealKey, None] = {}
    for v in virtuals:
        for r in v.reals:
            key = real_key(v, r)
            if r.address == address and port in (None, r.port, key.dest.port):
                found[key] = None
    if not found:
        raise ManualError(f"virtual service {want} has no real server {real.strip()}")
    if len(found) > 1:
        ports = ", ".join(str(k.dest) for k in found)
        raise ManualError(f"{real.strip()} matches several real servers ({ports}): give the port")
    return next(iter(found))


# --- the overrides -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Override:
    """One real held out of service by an operator. Times are wall-clock (they are saved)."""

    hold: Hold
    since: float
    #: When a drain gives up waiting for connections to end; None for a disable.
    deadline: float | None = None


def settle(
    overrides: Mapping[RealKey, Override], actual: IpvsTable, now: float
) -> dict[RealKey, Override]:
    """The drains that are over: connections gone, the real gone, or the bound passed.

    Returns only the entries that change (each becomes a disable). Pure.
    """
    done: dict[RealKey, Override] = {}
    for key, over in overrides.items():
        if over.hold is not Hold.DRAINING:
            continue
        vs = actual.services.get(key.service)
        dest = vs.dests.get(key.dest) if vs else None
        counters = dest.counters if dest else None
        idle = dest is None or (
            counters is not None and counters.active_conns + counters.inactive_conns == 0
        )
        if idle or (over.deadline is not None and now >= over.deadline):
            done[key] = Override(Hold.DISABLED, now)
    return done


class ManualStore:
    """Reads and atomically rewrites the overrides file; ``path=None`` keeps nothing on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def load(self) -> dict[RealKey, Override]:
        """The saved overrides; bad entries are skipped with a warning, never fatal."""
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read manual overrides from %s: %s", self.path, exc)
            return {}
        entries = data.get("overrides") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            log.warning("%s: no overrides list (ignored)", self.path)
            return {}
        result: dict[RealKey, Override] = {}
        for number, entry in enumerate(entries, 1):
            try:
                key, over = _decode(entry)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("%s: entry %d: %s (ignored)", self.path, number, exc)
                continue
            result[key] = over
        return result

    def save(self, overrides: Mapping[RealKey, Override]) -> None:
        """Replace the file; a crash mid-write leaves the old one whole."""
        if self.path is None:
            return
        entries = [
            _encode(k, o) for k, o in sorted(overrides.items(), key=lambda kv: _order(kv[0]))
        ]
        body = json.dumps({"version": FORMAT_VERSION, "overrides": entries}, indent=1) + "\n"
        replace_file(self.path, body)


def _order(key: RealKey) -> tuple[object, ...]:
    return (key.service.sort_key, key.dest.sort_key)


def _encode(key: RealKey, over: Override) -> dict[str, object]:
    entry: dict[str, object] = {
        "virtual": str(key.service),
        "real": str(key.dest),
        "state": over.hold.value,
        "since": over.since,
    }
    if over.deadline is not None:
        entry["deadline"] = over.deadline
    return entry


def _decode(entry: object) -> tuple[RealKey, Override]:
    if not isinstance(entry, dict):
        raise TypeError("not an object")
    service = parse_service_key(str(entry["virtual"]))
    address, port = _hostport(str(entry["real"]))
    if port is None:
        raise ValueError(f"real {entry['real']!r} has no port")
    deadline = entry.get("deadline")
    return RealKey(service, DestKey(address, port)), Override(
        Hold(entry["state"]),
        float(entry["since"]),
        float(deadline) if deadline is not None else None,
    )


class ManualOverrides:
    """The live overrides of one daemon, saved after every change."""

    def __init__(
        self, store: ManualStore | None = None, *, now: Callable[[], float] = time.time
    ) -> None:
        self.store = store or ManualStore(None)
        self._now = now
        self.current: dict[RealKey, Override] = self.store.load()
        self._holds: Mapping[RealKey, Hold] = self._freeze()

    def __iter__(self) -> Iterator[RealKey]:
        return iter(self.current)

    def holds(self) -> Mapping[RealKey, Hold]:
        """What ``desired`` needs: each held real and how (a cached read-only view)."""
        return self._holds

    def disable(self, key: RealKey) -> None:
        """Take the real out now."""
        self._set(key, Override(Hold.DISABLED, self._now()))

    def drain(self, key: RealKey, timeout: float = DEFAULT_DRAIN_TIMEOUT) -> None:
        """Weight 0 until its connections end or ``timeout`` seconds pass, then out."""
        now = self._now()
        self._set(key, Override(Hold.DRAINING, now, now + timeout))

    def enable(self, key: RealKey) -> bool:
        """Clear any override; False when there was none."""
        if key not in self.current:
            return False
        changed = dict(self.current)
        del changed[key]
        self._replace(changed)
        return True

    def settle(self, actual: IpvsTable) -> list[RealKey]:
        """Turn finished drains into disables (saved); return the reals whose drain ended."""
        done = settle(self.current, actual, self._now())
        if done:
            for key in done:
                log.info("drain of %s finished: removing it", key)
            self._replace({**self.current, **done})
        return list(done)

    def _set(self, key: RealKey, over: Override) -> None:
        self._replace({**self.current, key: over})

    def _replace(self, overrides: dict[RealKey, Override]) -> None:
        # Saved before it takes effect, so a crash never forgets what the kernel already shows.
        self.store.save(overrides)
        self.current = overrides
        self._holds = self._freeze()

    def _freeze(self) -> Mapping[RealKey, Hold]:
        return MappingProxyType({k: o.hold for k, o in self.current.items()})
