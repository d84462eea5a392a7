"""service=radius: an Access-Request for login/passwd with the shared secret; up on Access-Accept.

Called through :func:`checks.run`. pyrad (optional extra ``ldirector[radius]``) encodes and
verifies the packets; the exchange runs over an asyncio datagram endpoint. The request is sent
again at growing intervals (1 s, 2 s, 4 s...) until a reply comes or the caller's timeout ends
the check. Requests carry a Message-Authenticator, and replies are verified against the request
and the secret (BlastRADIUS countermeasures included), so a forged or stray datagram cannot mark
the real server up.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import Any

from checks._io import MAX_DATAGRAMS, describe, missing_driver, printable, udp_endpoint
from checks.types import RadiusSpec, Result, Target

#: Only the attributes this check sends or reads; pyrad needs a dictionary to encode them.
_DICTIONARY = """\
ATTRIBUTE User-Name 1 string
ATTRIBUTE User-Password 2 string
ATTRIBUTE Reply-Message 18 octets
ATTRIBUTE NAS-Identifier 32 string
ATTRIBUTE Message-Authenticator 80 octets
"""
_ACCEPT, _REJECT, _CHALLENGE = 2, 3, 11
_NAMES = {_ACCEPT: "Access-Accept", _REJECT: "Access-Reject", _CHALLENGE: "Access-Challenge"}
#: Seconds before the first resend, doubled after each one up to the cap.
FIRST_RESEND, MAX_RESEND = 1.0, 8.0
#: Requests sent before giving up (about a minute of waiting, longer than any sane timeout).
MAX_SENDS = 10


async def check(target: Target, spec: RadiusSpec) -> Result:
    """Authenticate ``login`` and expect Access-Accept."""
    try:
        from pyrad import packet
        from pyrad.dictionary import Dictionary
    except ImportError:
        return Result(False, missing_driver("radius", "pyrad"))
    dictionary = Dictionary(io.StringIO(_DICTIONARY))
    secret = spec.secret.encode()
    request = packet.AuthPacket(secret=secret, dict=dictionary, message_authenticator=True)
    request["User-Name"] = spec.login
    request["User-Password"] = request.PwCrypt(spec.passwd)
    request["NAS-Identifier"] = "ldirector"
    raw = request.RequestPacket()

    try:
        transport, replies = await udp_endpoint(target)
    except OSError as exc:
        return Result(False, describe(exc))
    try:
        delay = FIRST_RESEND
        for _ in range(MAX_SENDS):
            transport.sendto(raw)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    # Stray datagrams are skipped, a bounded number per wait; past that the
                    # request is simply sent again.
                    for _ in range(MAX_DATAGRAMS):
                        item = await replies.queue.get()
                        if isinstance(item, OSError):
                            return Result(False, describe(item))
                        verdict = _judge(packet, dictionary, request, item)
                        if verdict is not None:
                            return verdict
            delay = min(delay * 2, MAX_RESEND)
    finally:
        transport.abort()
    return Result(False, f"no RADIUS reply to {MAX_SENDS} requests")


def _judge(packet: Any, dictionary: Any, request: Any, data: bytes) -> Result | None:
    """The verdict a reply datagram gives, or None when it is not a reply to ``request``."""
    try:
        reply = packet.Packet(packet=data, dict=dictionary, secret=request.secret)
    except packet.PacketError:
        return None
    if reply.id != request.id:
        return None
    if not request.VerifyReply(reply, data):
        return Result(False, "RADIUS reply failed verification (is the secret right?)")
    name = _NAMES.get(reply.code, f"code {reply.code}")
    message = ""
    if "Reply-Message" in reply:
        # Declared as octets: a server's text need not be valid UTF-8.
        text = b" ".join(reply["Reply-Message"]).decode("utf-8", "replace")
        message = ": " + printable(text)
    if reply.code == _ACCEPT:
        return Result(True, f"RADIUS {name}{message}")
    return Result(False, f"RADIUS {name}{message}")
