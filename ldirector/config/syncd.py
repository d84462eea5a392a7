"""The sync-daemon directives: which connection-sync daemons a director runs, and how.

``syncdaemon = master|backup|both INTERFACE`` names the roles (a second line may give the other
role another interface); ``syncid``, ``syncmaxlen``, ``syncgroup``, ``syncport`` and ``syncttl``
tune every daemon the config starts. The parser hands each line to `RawSync.take`; `build`
turns the whole into `SyncDaemon` values once the file is read, checking that each interface
exists through an injectable lookup (``socket.if_nametoindex`` in production) so that tests and
``ldirector check`` on another host can say what they mean.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from ldirector.config.errors import Diagnostic, Severity, Span
from ldirector.config.values import Invalid, clip, integer, literal, shown
from ldirector.ipvs.sync import DEFAULT_GROUP, DEFAULT_PORT, IFNAME_MAX, DaemonState, SyncDaemon
from ldirector.ipvs.types import IPAddress

#: Says whether a network interface of this name exists on this host.
InterfaceLookup = Callable[[str], bool]

#: The directives this module reads (the parser sends these names here).
SYNC_DIRECTIVES = frozenset(
    {"syncdaemon", "syncid", "syncmaxlen", "syncgroup", "syncport", "syncttl"}
)

_ROLES = {
    "master": (DaemonState.MASTER,),
    "backup": (DaemonState.BACKUP,),
    "both": (DaemonState.MASTER, DaemonState.BACKUP),
}


def interface_exists(name: str) -> bool:
    """True when the kernel knows a network interface called ``name``."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


@dataclass
class RawSync:
    """The sync directives as written, before the interfaces are looked up."""

    #: Role -> (interface, line of its syncdaemon directive).
    roles: dict[DaemonState, tuple[str, Span]] = field(default_factory=dict)
    syncid: int | None = None
    maxlen: int | None = None
    group: IPAddress | None = None
    port: int | None = None
    ttl: int | None = None
    #: Line of the first tuning directive, for the warning when no daemon is configured.
    tuned_at: Span | None = None

    def take(self, key: str, value: str, span: Span) -> None:
        """Record one directive line; raise ``Invalid`` with its one-line message."""
        match key:
            case "syncdaemon":
                self._daemon(value, span)
                return
            case "syncid":
                self.syncid = _number(value, "invalid syncid", 0, 255)
            case "syncmaxlen":
                self.maxlen = _number(value, "invalid syncmaxlen", 1, 65535)
            case "syncgroup":
                self.group = _group(value)
            case "syncport":
                self.port = _number(value, "invalid syncport", 1, 65535)
            case "syncttl":
                self.ttl = _number(value, "invalid syncttl", 1, 255)
            case _:  # pragma: no cover - SYNC_DIRECTIVES and this match are kept in step
                raise Invalid(f"{key} is not a sync daemon directive")
        self.tuned_at = self.tuned_at or span

    def _daemon(self, value: str, span: Span) -> None:
        words = value.split()
        if len(words) != 2 or words[0] not in _ROLES:
            raise Invalid(
                f"invalid syncdaemon {shown(value)}: expected master|backup|both INTERFACE"
            )
        role, interface = words
        name = interface.encode("utf-8", "surrogateescape")
        if len(name) > IFNAME_MAX or "/" in interface or ":" in interface:
            raise Invalid(
                f"invalid syncdaemon interface {shown(interface)}: "
                f"a network interface name of at most {IFNAME_MAX} bytes"
            )
        for state in _ROLES[role]:
            if state in self.roles:
                first = self.roles[state][1].line
                raise Invalid(f"{state.word} sync daemon already configured at line {first}")
        for state in _ROLES[role]:
            self.roles[state] = (interface, span)


def build(
    raw: RawSync, has_interface: InterfaceLookup
) -> tuple[tuple[SyncDaemon, ...], list[Diagnostic]]:
    """The daemons to run, master first, and the diagnostics about them."""
    diagnostics: list[Diagnostic] = []
    if not raw.roles:
        if raw.tuned_at is not None:
            diagnostics.append(
                Diagnostic(
                    Severity.WARNING,
                    raw.tuned_at,
                    "sync daemon settings have no effect without a syncdaemon directive",
                )
            )
        return (), diagnostics
    daemons: list[SyncDaemon] = []
    missing: set[Span] = set()
    for state in sorted(raw.roles):
        interface, span = raw.roles[state]
        if not has_interface(interface):
            if span in missing:  # ``both``: one line, one error
                continue
            missing.add(span)
            diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    span,
                    f"syncdaemon: no network interface {clip(interface)!r} on this host",
                )
            )
            continue
        try:
            daemons.append(
                SyncDaemon(
                    state=state,
                    interface=interface,
                    syncid=raw.syncid or 0,
                    maxlen=raw.maxlen,
                    group=raw.group or DEFAULT_GROUP,
                    port=raw.port or DEFAULT_PORT,
                    ttl=raw.ttl or 1,
                )
            )
        except ValueError as exc:  # the directives were range-checked: a gap between the two
            diagnostics.append(Diagnostic(Severity.ERROR, span, str(exc)))
    return tuple(daemons), diagnostics


def _number(value: str, message: str, low: int, high: int) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise Invalid(f"{message} {shown(text)}: expected a number {low}..{high}")
    try:
        return integer(text, message, low, high)
    except Invalid:
        raise Invalid(f"{message} {shown(text)}: expected a number {low}..{high}") from None


def _group(value: str) -> IPAddress:
    text = value.strip()
    address = literal(text)
    if address is None or not address.is_multicast:
        raise Invalid(
            f"invalid syncgroup {shown(text)}: expected an IPv4 or IPv6 multicast address"
        )
    return address
