"""service=imap and imaps (TLS from the first byte): the greeting, LOGIN when a login is set.

Called through :func:`checks.run`; speaks IMAP4rev1 over :mod:`checks._lines`. Unlike
ldirectord, which always connects to 143 or 993, the target's port is used: checkport, else the
real's port, else 143/993.
"""

from __future__ import annotations

from checks._io import FAILURES, ProtocolError, describe, printable
from checks._lines import MAX_LINES, LineClient
from checks.types import ImapSpec, Result, Target


def quote(value: str) -> str:
    """An IMAP quoted string (RFC 3501 section 4.3)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def _tagged(imap: LineClient, tag: str, what: str) -> str:
    """Skip untagged data until the reply tagged ``tag``; it must be OK."""
    for _ in range(MAX_LINES):
        line = await imap.readline()
        if line.startswith(f"{tag} "):
            status = line[len(tag) + 1 :]
            if not status.upper().startswith("OK"):
                raise ProtocolError(f"IMAP {what} failed: {printable(status)}")
            return printable(status)
        if line.upper().startswith("* BYE"):
            raise ProtocolError(f"IMAP server said {printable(line[2:])} ({what})")
    raise ProtocolError(f"IMAP {what}: no tagged reply in {MAX_LINES} lines")


async def check(target: Target, spec: ImapSpec) -> Result:
    """Read the greeting, LOGIN if configured, and LOGOUT."""
    try:
        async with await LineClient.open(target, tls=spec.tls) as imap:
            greeting = await imap.readline()
            if not greeting.upper().startswith(("* OK", "* PREAUTH")):
                if greeting.upper().startswith("* BYE"):
                    raise ProtocolError(f"IMAP server said {printable(greeting[2:])}")
                raise ProtocolError(f"not an IMAP greeting: {printable(greeting)!r}")
            seen = f"IMAP {printable(greeting[2:], 80)}"
            if spec.login:
                await imap.send(f"a1 LOGIN {quote(spec.login)} {quote(spec.passwd)}")
                seen = f"IMAP logged in as {spec.login}: {await _tagged(imap, 'a1', 'LOGIN')}"
            await imap.goodbye("a2 LOGOUT")
            return Result(True, seen)
    except FAILURES as exc:
        return Result(False, describe(exc))
