"""Which virtuals are serving (a real up and not held by an operator), and what a flip of that
sets off: the fallbackcommands.

Sits beside the engine's health map: after each reconcile the engine asks it to look again at
the virtuals that moved. The fallback server itself is the desired table's business, and its
log lines are the kernel's (``ldirector.engine.oplog``); this is only the commands, which run
on a flip whether or not a fallback server is configured.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ldirector.core.desired import HoldMap, RealKey, policy
from ldirector.core.health import CheckMode, RealHealth, Status, fallback_switch
from ldirector.core.layout import Layout
from ldirector.engine.fallbackcommands import FallbackCommands
from ldirector.ipvs.types import ServiceKey


class Serving:
    """Per virtual: was a real up when last looked at (None until first decided)."""

    def __init__(self, commands: FallbackCommands) -> None:
        self.commands = commands
        self._state: dict[ServiceKey, bool] = {}

    def update(
        self,
        layout: Layout,
        health: Mapping[RealKey, RealHealth],
        holds: HoldMap,
        only: Collection[ServiceKey] | None = None,
    ) -> None:
        """Run the fallbackcommands of virtuals whose "any real up" flipped.

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
            # First look (start): taken as serving before, so nothing up switches on at once.
            on = fallback_switch(rules, True if before is None else before, now)
            if on is not None:
                self.commands.run(virtual, "start" if on else "stop")

    def keep(self, keys: Collection[ServiceKey]) -> None:
        """Forget the virtuals a reload removed."""
        self._state = {k: v for k, v in self._state.items() if k in keys}

    def falling_back(self, key: ServiceKey) -> bool:
        """No real was up at the last look: its fallbackcommand ``start`` is in effect."""
        return self._state.get(key) is False
