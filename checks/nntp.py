"""service=nntp: the server greeting must be a 2xx status (200 or 201).

Called through :func:`checks.run`; speaks over :mod:`checks._lines`. Unlike ldirectord (bug B23),
the connect is bounded too: the caller's timeout covers the whole exchange.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

from checks._lines import LineClient, ProtocolError, failure
from checks.types import NntpSpec, Result, Target


async def check(target: Target, spec: NntpSpec) -> Result:
    """Read the greeting; 2xx is up. QUIT politely afterwards."""
    try:
        async with await LineClient.open(target) as nntp:
            status = await nntp.expect("NNTP", range(200, 300), "greeting")
            await nntp.send("QUIT")
            # A server that drops the connection on QUIT without a 205 is still healthy.
            with contextlib.suppress(ProtocolError):
                await nntp.reply()
            return Result(True, status)
    except (OSError, ssl.SSLError, ProtocolError, asyncio.IncompleteReadError) as exc:
        return Result(False, failure(exc))
