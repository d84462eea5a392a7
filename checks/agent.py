"""An agent check in the style of HAProxy's ``agent-check``: the real server itself says how it is.

ldirector connects to the agent's TCP port and reads one line, at most ``MAX_LINE`` bytes, such
as ``75%``, ``up``, ``drain`` or ``maint 0%``; words are separated by spaces, commas or tabs,
and case does not matter. ``up``/``ready`` mean serving, ``down``/``fail``/``stopped`` mean
down, ``drain`` means serving at weight 0 (existing connections carry on, as under an
operator's drain) and ``maint`` means taken out (as under an operator's disable). ``N%`` is the
share of its configured weight the real wants. Unknown words are ignored, so an agent written
for HAProxy's fuller language still works; a reply with no word known is a failure.
"""

from __future__ import annotations

import asyncio
import enum
import re

from checks._io import FAILURES, describe, printable, tcp_stream
from checks.types import AgentSpec, Result, Target, Weight

#: Bytes read from the agent: one short line is all it has to say.
MAX_LINE = 512
_SEPARATORS = re.compile(r"[\s,]+")
_PERCENT = re.compile(r"^(\d{1,3})%$")


class State(enum.StrEnum):
    """What an agent can say about itself."""

    UP = "up"
    DOWN = "down"
    DRAIN = "drain"
    MAINT = "maint"


_WORDS = {
    "up": State.UP,
    "ready": State.UP,
    "down": State.DOWN,
    "fail": State.DOWN,
    "stopped": State.DOWN,
    "drain": State.DRAIN,
    "maint": State.MAINT,
}


def verdict(line: str) -> Result:
    """The result an agent's reply line means."""
    state: State | None = None
    percent: int | None = None
    for word in _SEPARATORS.split(line.strip().lower()):
        if word in _WORDS:
            state = _WORDS[word]
        elif (m := _PERCENT.match(word)) is not None:
            percent = min(100, int(m.group(1)))
    shown = printable(line.strip(), 80)
    if state is None and percent is None:
        return Result(False, f"agent reply '{shown}' has no state or weight")
    match state:
        case State.DOWN | State.MAINT:
            # The weight marks the agent's own word, unlike a probe that failed.
            return Result(False, f"agent says {state}: '{shown}'", weight=Weight(0, percent=True))
        case State.DRAIN:
            return Result(True, f"agent says drain: '{shown}'", weight=Weight(0, percent=True))
        case State.UP | None:
            weight = None if percent is None else Weight(percent, percent=True)
            return Result(True, f"agent says '{shown}'", weight=weight)


async def check(target: Target, spec: AgentSpec) -> Result:
    """Read the agent's line (``spec.send`` is written first when given) and judge it."""
    try:
        async with tcp_stream(target, limit=MAX_LINE) as (reader, writer):
            if spec.send:
                writer.write(spec.send.encode("utf-8"))
                await writer.drain()
            data = await _first_line(reader)
    except FAILURES as exc:
        return Result(False, describe(exc))
    if not data.strip():
        return Result(False, "agent closed the connection without a reply")
    return verdict(data.decode("utf-8", "replace").splitlines()[0])


async def _first_line(reader: asyncio.StreamReader) -> bytes:
    """The bytes up to the first newline, end of file, or ``MAX_LINE``, whichever is first."""
    data = bytearray()
    while len(data) < MAX_LINE and b"\n" not in data:
        chunk = await reader.read(MAX_LINE - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data[:MAX_LINE])
