"""The daemon's event loop: libuv's (uvloop) where it is installed, else asyncio's own.

Every check, timer and kernel exchange runs on this one loop, so its cost per wake-up and per
socket event is the daemon's cost per check: on uvloop an HTTP check costs about 40% less CPU
(tests/bench/bench_checks.py --loop). ``LDIRECTOR_LOOP`` in the daemon's environment (a systemd
drop-in's ``Environment=``) chooses: ``auto`` (the default), ``uvloop`` (with a warning when it
is missing) or ``asyncio``, the way back should uvloop misbehave somewhere.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar

log = logging.getLogger(__name__)

ENV = "LDIRECTOR_LOOP"
#: auto: uvloop where it is installed.
CHOICES = ("auto", "uvloop", "asyncio")
DEFAULT = "auto"

T = TypeVar("T")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def choose(environ: Mapping[str, str] = os.environ) -> tuple[LoopFactory | None, str]:
    """The loop factory the environment asks for (None: asyncio's default) and its name."""
    wanted = environ.get(ENV, "").strip().lower() or DEFAULT
    if wanted not in CHOICES:
        log.warning(
            "%s=%r is not one of %s: using the default", ENV, wanted[:40], ", ".join(CHOICES)
        )
        wanted = DEFAULT
    if wanted == "asyncio":
        return None, "asyncio"
    try:
        # A dependency, but a from-source install on a platform without wheels may lack it.
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        if wanted == "uvloop":
            log.warning("%s=uvloop, but uvloop is not installed: using asyncio's loop", ENV)
        return None, "asyncio"
    factory: LoopFactory = uvloop.new_event_loop
    return factory, "uvloop"


def run(main: Coroutine[Any, Any, T], environ: Mapping[str, str] = os.environ) -> T:
    """``asyncio.run(main)`` on the loop ``choose`` picks."""
    factory, name = choose(environ)
    log.debug("event loop: %s", name)
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
