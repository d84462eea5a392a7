"""service=simpletcp: send ``request``, close the write side, look for ``receive`` in the reply.

A generic line protocol check. The request arrives as it goes on the wire (the config layer has
dropped ldirectord's leading ``/`` and turned ``\\n`` into newlines). An empty ``receive`` means
"any reply" (ldirectord reuses Perl's last matched pattern there).
"""

from __future__ import annotations

from checks._io import FAILURES, MAX_READ, describe, printable, tcp_stream
from checks.types import Result, SimpleTcpSpec, Target


async def check(target: Target, spec: SimpleTcpSpec) -> Result:
    """Up when a line of the reply matches ``receive`` (any reply when receive is empty)."""
    request = spec.request
    reply = bytearray()
    try:
        async with tcp_stream(target) as (reader, writer):
            writer.write(request.encode("utf-8"))
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            # Judge as data arrives: a server that answers and then keeps the line open is up.
            while len(reply) < MAX_READ and (chunk := await reader.read(MAX_READ - len(reply))):
                reply += chunk
                if (line := _match(spec, reply.decode("utf-8", "replace"))) is not None:
                    return Result(True, f"reply '{printable(line)}'")
    except FAILURES as exc:
        return Result(False, describe(exc))
    if not reply:
        return Result(False, "connection closed without a reply")
    assert spec.receive is not None  # noqa: S101 - any reply at all matched above otherwise
    text = printable(reply.decode("utf-8", "replace"))
    return Result(False, f"receive '{printable(spec.receive.pattern)}' not found in '{text}'")


def _match(spec: SimpleTcpSpec, text: str) -> str | None:
    """The first line of ``text`` matching ``receive``, or None."""
    if spec.receive is None:
        return text
    return next((line for line in text.splitlines() if spec.receive.search(line)), None)
