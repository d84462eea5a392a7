"""service=nntp: the server greeting must be a 2xx status (200 or 201).

Called through :func:`checks.run`; speaks over :mod:`checks._lines`. Unlike ldirectord,
the connect is bounded too: the caller's timeout covers the whole exchange.
"""

from __future__ import annotations

from checks._io import FAILURES, describe
from checks._lines import LineClient
from checks.types import NntpSpec, Result, Target


async def check(target: Target, spec: NntpSpec) -> Result:
    """Read the greeting; 2xx is up. QUIT politely afterwards."""
    try:
        async with await LineClient.open(target) as nntp:
            status = await nntp.expect("NNTP", range(200, 300), "greeting")
            await nntp.goodbye("QUIT")
            return Result(True, status)
    except FAILURES as exc:
        return Result(False, describe(exc))
