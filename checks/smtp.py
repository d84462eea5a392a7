"""service=smtp and submission: the greeting, EHLO (HELO when EHLO is refused), then QUIT.

Called through :func:`checks.run`; speaks SMTP over :mod:`checks._lines`. Success means the server
greeted with 220 and accepted EHLO or HELO with 250, as ldirectord's Net::SMTP object creation
does; request and receive are not used.
"""

from __future__ import annotations

from checks._io import FAILURES, ProtocolError, describe
from checks._lines import LineClient
from checks.types import Result, SmtpSpec, Target

#: The name ldirectord's Net::SMTP announces.
HELO_NAME = "localhost.localdomain"


async def check(target: Target, spec: SmtpSpec) -> Result:
    """Greet the real server as an SMTP client would and say goodbye."""
    try:
        async with await LineClient.open(target) as smtp:
            await smtp.expect("SMTP", (220,), "greeting")
            await smtp.send(f"EHLO {HELO_NAME}")
            code, text = await smtp.reply()
            if code != 250:
                # Servers that predate ESMTP answer EHLO with 500/502; HELO is the fallback.
                await smtp.send(f"HELO {HELO_NAME}")
                code, text = await smtp.reply()
            if code != 250:
                raise ProtocolError(f"SMTP {code} {text} (HELO)")
            await smtp.goodbye("QUIT")
            return Result(True, f"SMTP 250 {text}".rstrip())
    except FAILURES as exc:
        return Result(False, describe(exc))
