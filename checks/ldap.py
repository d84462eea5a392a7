"""service=ldap and ldaps: a simple bind, a base-scope search of the base DN, then unbind.

Called through :func:`checks.run`. LDAPv3 needs only three requests here, so they are BER-encoded
in this module and spoken over asyncio streams (ldap3 is synchronous, and a thread cannot be
cancelled at the caller's timeout). Up when the search returns exactly one entry whose DN
matches ``receive`` (if set). The bind is simple with login and passwd when both are set, else
anonymous, as in ldirectord. Unlike ldirectord, a failure is reported once.

A hostile server cannot make the check hold more than one message: each is at most
``MAX_MESSAGE`` bytes, a search stops reading at its second entry (one is the answer, two are
too many), and one check reads at most ``MAX_MESSAGES`` messages and ``MAX_EXCHANGE`` bytes.
"""

from __future__ import annotations

import asyncio

from checks._io import FAILURES, ProtocolError, describe, printable, tcp_stream
from checks.types import LdapSpec, Result, Target

#: Largest LDAP message accepted; one entry without attributes is a few hundred bytes.
MAX_MESSAGE = 256 * 1024
#: Most messages and bytes one check reads: a bind reply, an entry or two, a result, and room
#: for a few referrals or notices.
MAX_MESSAGES = 64
MAX_EXCHANGE = 1 << 20

# BER tags (RFC 4511): universal, then [APPLICATION n] protocol operations.
_INTEGER, _OCTETS, _ENUM, _BOOL, _SEQUENCE = 0x02, 0x04, 0x0A, 0x01, 0x30
_BIND_REQ, _BIND_RESP, _UNBIND_REQ = 0x60, 0x61, 0x42
_SEARCH_REQ, _ENTRY, _DONE, _REFERENCE = 0x63, 0x64, 0x65, 0x73
_EXTENDED_RESP = 0x78
_SIMPLE_AUTH, _PRESENT_FILTER = 0x80, 0x87

RESULT_NAMES = {
    0: "success",
    1: "operationsError",
    2: "protocolError",
    3: "timeLimitExceeded",
    4: "sizeLimitExceeded",
    7: "authMethodNotSupported",
    8: "strongerAuthRequired",
    10: "referral",
    11: "adminLimitExceeded",
    13: "confidentialityRequired",
    32: "noSuchObject",
    34: "invalidDNSyntax",
    48: "inappropriateAuthentication",
    49: "invalidCredentials",
    50: "insufficientAccessRights",
    51: "busy",
    52: "unavailable",
    53: "unwillingToPerform",
    80: "other",
}


# --- BER ---------------------------------------------------------------------------------------


def tlv(tag: int, value: bytes) -> bytes:
    """One BER element with a definite length."""
    n = len(value)
    if n < 0x80:
        return bytes((tag, n)) + value
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + value


def integer(tag: int, value: int) -> bytes:
    return tlv(tag, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True))


def message(message_id: int, operation: bytes) -> bytes:
    return tlv(_SEQUENCE, integer(_INTEGER, message_id) + operation)


def bind_request(message_id: int, name: str, password: str) -> bytes:
    body = integer(_INTEGER, 3) + tlv(_OCTETS, name.encode()) + tlv(_SIMPLE_AUTH, password.encode())
    return message(message_id, tlv(_BIND_REQ, body))


def search_request(message_id: int, base: str) -> bytes:
    body = (
        tlv(_OCTETS, base.encode())
        + integer(_ENUM, 0)  # scope: baseObject
        + integer(_ENUM, 0)  # derefAliases: never
        + integer(_INTEGER, 2)  # sizeLimit: enough to tell one entry from several
        + integer(_INTEGER, 0)  # timeLimit: none; the caller's timeout bounds the check
        + tlv(_BOOL, b"\x00")  # typesOnly: false
        + tlv(_PRESENT_FILTER, b"objectClass")  # (objectClass=*)
        + tlv(_SEQUENCE, tlv(_OCTETS, b"1.1"))  # no attributes: the DN is all we match
    )
    return message(message_id, tlv(_SEARCH_REQ, body))


def unbind_request(message_id: int) -> bytes:
    return message(message_id, tlv(_UNBIND_REQ, b""))


def split(data: bytes, offset: int = 0) -> tuple[int, bytes, int]:
    """The element at ``offset``: its tag, its value and the offset just past it."""
    if offset + 2 > len(data):
        raise ProtocolError("LDAP reply truncated")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first & 0x80:
        count = first & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise ProtocolError("LDAP reply has an unsupported BER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    else:
        length = first
    if offset + length > len(data):
        raise ProtocolError("LDAP reply truncated")
    return tag, data[offset : offset + length], offset + length


def elements(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    offset = 0
    while offset < len(data):
        tag, value, offset = split(data, offset)
        out.append((tag, value))
    return out


# --- wire --------------------------------------------------------------------------------------


class _Replies:
    """The server's side of one check's exchange: LDAP messages, read within the check's bounds."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.messages = MAX_MESSAGES
        self.budget = MAX_EXCHANGE

    async def next(self) -> tuple[int, int, bytes]:
        """The next LDAPMessage as (message id, operation tag, operation value)."""
        if self.messages <= 0:
            raise ProtocolError(f"LDAP server sent more than {MAX_MESSAGES} messages")
        self.messages -= 1
        head = await self.reader.readexactly(2)
        if head[0] != _SEQUENCE:
            raise ProtocolError(f"not an LDAP server (first byte 0x{head[0]:02x})")
        length = head[1]
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4:
                raise ProtocolError("LDAP reply has an unsupported BER length")
            length = int.from_bytes(await self.reader.readexactly(count), "big")
        if length > MAX_MESSAGE:
            raise ProtocolError(f"LDAP reply of {length} bytes is larger than {MAX_MESSAGE}")
        self.budget -= length
        if self.budget < 0:
            raise ProtocolError(f"LDAP server sent more than {MAX_EXCHANGE} bytes")
        parts = elements(await self.reader.readexactly(length))
        if len(parts) < 2 or parts[0][0] != _INTEGER:
            raise ProtocolError("malformed LDAP message")
        return int.from_bytes(parts[0][1], "big", signed=True), parts[1][0], parts[1][1]

    async def reply(self, message_id: int) -> tuple[int, bytes]:
        """The next message answering ``message_id`` (others are skipped), as (tag, value)."""
        for _ in range(MAX_MESSAGES):
            got_id, tag, value = await self.next()
            if got_id == 0 and tag == _EXTENDED_RESP:
                # An unsolicited notice of disconnection (RFC 4511 section 4.4.1).
                raise ProtocolError(f"LDAP server disconnected: {result_of(value)[1]}")
            if got_id == message_id:
                return tag, value
        raise ProtocolError(f"LDAP server sent more than {MAX_MESSAGES} messages")


def result_of(value: bytes) -> tuple[int, str]:
    """An LDAPResult's code and a printable description ("invalidCredentials (49): ...")."""
    parts = elements(value)
    if len(parts) < 3 or parts[0][0] != _ENUM:
        raise ProtocolError("malformed LDAP result")
    code = int.from_bytes(parts[0][1], "big")
    text = f"{RESULT_NAMES.get(code, 'result')} ({code})"
    diagnostic = printable(parts[2][1].decode("utf-8", "replace"))
    return code, f"{text}: {diagnostic}" if diagnostic else text


async def _search(replies: _Replies, base: str) -> list[str]:
    """The DNs the base search returned, two at most, or a ProtocolError for a failed search."""
    dns: list[str] = []
    for _ in range(MAX_MESSAGES):
        tag, value = await replies.reply(2)
        if tag == _ENTRY:
            dn_tag, dn, _ = split(value)
            if dn_tag != _OCTETS:
                raise ProtocolError("malformed LDAP search entry")
            dns.append(dn.decode("utf-8", "replace"))
            if len(dns) > 1:
                # A base-scope search names one entry: a second one settles it.
                return dns
        elif tag == _DONE:
            code, text = result_of(value)
            if code != 0 and not dns:
                raise ProtocolError(f"LDAP search of {base!r} failed: {text}")
            return dns
        elif tag != _REFERENCE:
            raise ProtocolError(f"unexpected LDAP reply 0x{tag:02x} to a search")
    raise ProtocolError(f"LDAP server sent more than {MAX_MESSAGES} messages")


async def check(target: Target, spec: LdapSpec) -> Result:
    """Bind, search ``base`` with base scope, and expect one entry matching ``receive``."""
    base = spec.base.lstrip("/")
    name, password = (spec.login, spec.passwd) if spec.login and spec.passwd else ("", "")
    try:
        async with tcp_stream(target, tls=spec.tls) as (reader, writer):
            replies = _Replies(reader)
            # RFC 4511 section 4.2.1: nothing may follow a bind until its response has arrived.
            writer.write(bind_request(1, name, password))
            await writer.drain()
            tag, value = await replies.reply(1)
            if tag != _BIND_RESP:
                raise ProtocolError(f"unexpected LDAP reply 0x{tag:02x} to a bind")
            code, text = result_of(value)
            if code != 0:
                who = f"as {name!r}" if name else "anonymously"
                raise ProtocolError(f"LDAP bind {who} failed: {text}")
            writer.write(search_request(2, base))
            await writer.drain()
            dns = await _search(replies, base)
            writer.write(unbind_request(3))
            await writer.drain()
    except FAILURES as exc:
        return Result(False, describe(exc))
    if len(dns) > 1:
        return Result(False, f"LDAP search of {base!r} returned more than 1 entry (expected 1)")
    if not dns:
        return Result(False, f"LDAP search of {base!r} returned 0 entries (expected 1)")
    if spec.receive is not None and spec.receive.search(dns[0]) is None:
        return Result(
            False, f"receive {printable(spec.receive.pattern)!r} not found in DN {dns[0]!r}"
        )
    return Result(True, f"LDAP entry {printable(dns[0]) or '(root DSE)'}")
