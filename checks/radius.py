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
import io
from typing import Any

from checks._lines import failure, missing_driver, printable
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


class _Replies(asyncio.DatagramProtocol):
    """Datagrams, and errors such as ICMP port unreachable, in arrival order."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.queue.put_nowait(exc)


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

    loop = asyncio.get_running_loop()
    replies = _Replies()
    try:
        transport, _ = await loop.create_datagram_endpoint(
            lambda: replies, remote_addr=(str(target.address), target.port)
        )
    except OSError as exc:
        return Result(False, failure(exc))
    try:
        delay = FIRST_RESEND
        while True:
            transport.sendto(raw)
            try:
                async with asyncio.timeout(delay):
                    while True:
                        item = await replies.queue.get()
                        if isinstance(item, OSError):
                            return Result(False, failure(item))
                        verdict = _judge(packet, dictionary, request, item)
                        if verdict is not None:
                            return verdict
            except TimeoutError:
                delay = min(delay * 2, MAX_RESEND)
    finally:
        transport.abort()


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
