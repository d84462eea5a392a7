"""Which virtuals are serving (a real up and not held by an operator), and what a flip of that
sets off: the fallback events and the fallbackcommands.

Sits beside the engine's health map: after each reconcile the engine asks it to look again at
the virtuals that moved. The kernel side of a fallback (the fallback server in the table) is the
desired table's business; this is only the telling and the commands.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from ldirector.desired import HoldMap, RealKey, policy
from ldirector.engine.fallbackcmd import FallbackCommands
from ldirector.engine.layout import Layout
from ldirector.engine.notices import Notice
from ldirector.health import CheckMode, Event, EventKind, RealHealth, Status, fallback_event
from ldirector.ipvs.types import ServiceKey


class Serving:
    """Per virtual: was a real up when last looked at (None until first decided)."""

    def __init__(self, commands: FallbackCommands, notify: Callable[[Notice], None]) -> None:
        self.commands = commands
        self._notify = notify
        self._state: dict[ServiceKey, bool] = {}

    def update(
        self,
        layout: Layout,
        health: Mapping[RealKey, RealHealth],
        holds: HoldMap,
        only: Collection[ServiceKey] | None = None,
    ) -> None:
        """Fire fallback events and fallbackcommands for virtuals whose "any real up" flipped.

        ``only``: just the virtuals of these services (the others did not move).
        """
        for laid in layout.virtuals:
            virtual, key = laid.virtual, laid.key
            if only is not None and key not in only:
                continue
            rules = policy(virtual)
            if rules.mode is CheckMode.OFF:
                continue
            now = any(health[k].status is Status.UP and k not in holds for k in laid.reals)
            before = self._state.get(key)
            self._state[key] = now
            if before is None and not now:
                event: Event | None = Event(kind=EventKind.FALLBACK_ON)  # nothing up at start
            else:
                event = fallback_event(rules, now if before is None else before, now)
            if event is not None:
                self._notify(Notice(virtual, event))
                self.commands.run(virtual, "stop" if now else "start")

    def keep(self, keys: Collection[ServiceKey]) -> None:
        """Forget the virtuals a reload removed."""
        self._state = {k: v for k, v in self._state.items() if k in keys}

    def falling_back(self, key: ServiceKey) -> bool:
        """No real was up at the last look: its fallbackcommand ``start`` is in effect."""
        return self._state.get(key) is False
