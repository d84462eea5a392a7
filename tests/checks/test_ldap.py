"""service=ldap and ldaps against a private slapd seeded with slapadd, and against a hostile
server on loopback that floods the check with replies."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from checks import ldap
from checks.types import LdapSpec
from tests.support.checkrun import (
    assert_times_out_cleanly,
    cancel_at_many_points,
    leak_free,
    measured_check,
    run_check,
    target,
)
from tests.support.daemons_data import LDAP_ROOT_DN, LDAP_ROOT_PASSWORD, LDAP_SUFFIX
from tests.support.servers import Daemon, hung_tcp, refused_tcp

pytestmark = pytest.mark.daemon
SCHEMES = pytest.mark.parametrize("tls", [False, True], ids=["ldap", "ldaps"])


def port_of(slapd: Daemon, tls: bool) -> int:
    return slapd.ports["ldaps" if tls else "ldap"]


@SCHEMES
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_anonymous_base_search(slapd: Daemon, tls: bool, host: str) -> None:
    result = await run_check(target(port_of(slapd, tls), host), LdapSpec(tls=tls, base=LDAP_SUFFIX))
    assert result.ok, result.reason
    assert result.reason == f"LDAP entry {LDAP_SUFFIX}"


@SCHEMES
async def test_bind_and_receive_on_the_dn(slapd: Daemon, tls: bool) -> None:
    spec = LdapSpec(
        tls=tls,
        base=f"/uid=alice,ou=people,{LDAP_SUFFIX}",
        receive=re.compile(r"^uid=alice,"),
        login=LDAP_ROOT_DN,
        passwd=LDAP_ROOT_PASSWORD,
    )
    result = await run_check(target(port_of(slapd, tls)), spec)
    assert result.ok, result.reason


async def test_root_dse_with_an_empty_base(slapd: Daemon) -> None:
    result = await run_check(target(port_of(slapd, False)), LdapSpec())
    assert (result.ok, result.reason) == (True, "LDAP entry (root DSE)")


@SCHEMES
async def test_wrong_password_is_down(slapd: Daemon, tls: bool) -> None:
    spec = LdapSpec(tls=tls, base=LDAP_SUFFIX, login=LDAP_ROOT_DN, passwd="wrong")
    result = await run_check(target(port_of(slapd, tls)), spec)
    assert not result.ok
    assert result.reason == f"LDAP bind as '{LDAP_ROOT_DN}' failed: invalidCredentials (49)"


async def test_missing_base_is_down(slapd: Daemon) -> None:
    base = f"ou=nobody,{LDAP_SUFFIX}"
    result = await run_check(target(port_of(slapd, False)), LdapSpec(base=base))
    assert not result.ok
    assert result.reason == f"LDAP search of '{base}' failed: noSuchObject (32)"


async def test_entry_hidden_by_acl_is_down(slapd: Daemon) -> None:
    base = f"ou=hidden,{LDAP_SUFFIX}"
    result = await run_check(target(port_of(slapd, False)), LdapSpec(base=base))
    assert not result.ok
    assert result.reason == f"LDAP search of '{base}' returned 0 entries (expected 1)"
    # The same search bound as the admin sees the entry.
    spec = LdapSpec(base=base, login=LDAP_ROOT_DN, passwd=LDAP_ROOT_PASSWORD)
    assert (await run_check(target(port_of(slapd, False)), spec)).ok


async def test_receive_not_in_dn_is_down(slapd: Daemon) -> None:
    spec = LdapSpec(base=LDAP_SUFFIX, receive=re.compile("ou=people"))
    result = await run_check(target(port_of(slapd, False)), spec)
    assert not result.ok
    assert result.reason == f"receive 'ou=people' not found in DN '{LDAP_SUFFIX}'"


async def test_ldaps_against_the_plain_port_is_down(slapd: Daemon) -> None:
    # slapd answers a TLS ClientHello on its plain port by resetting the connection.
    result = await run_check(target(port_of(slapd, False)), LdapSpec(tls=True, base=LDAP_SUFFIX))
    assert (result.ok, result.reason) == (False, "connection reset by peer")


@SCHEMES
async def test_refused(tls: bool) -> None:
    with refused_tcp() as port:
        result = await run_check(target(port), LdapSpec(tls=tls, base=LDAP_SUFFIX))
    # ldirectord bug counted this failure twice; here it is one Result.
    assert (result.ok, result.reason) == (False, "connection refused")


@SCHEMES
async def test_hung_server_times_out_without_leaks(tls: bool) -> None:
    with hung_tcp() as port:
        await assert_times_out_cleanly(target(port), LdapSpec(tls=tls, base=LDAP_SUFFIX))


def test_ber_lengths_round_trip() -> None:
    for size in (0, 1, 127, 128, 255, 256, 65535, 70000):
        encoded = ldap.tlv(0x04, b"x" * size)
        tag, value, end = ldap.split(encoded)
        assert (tag, len(value), end) == (0x04, size, len(encoded))


def test_integers_are_minimal_twos_complement() -> None:
    assert ldap.integer(0x02, 0) == b"\x02\x01\x00"
    assert ldap.integer(0x02, 127) == b"\x02\x01\x7f"
    assert ldap.integer(0x02, 128) == b"\x02\x02\x00\x80"
    assert ldap.integer(0x02, 3) == b"\x02\x01\x03"


@SCHEMES
async def test_cancelled_mid_exchange_leaks_nothing(slapd: Daemon, tls: bool) -> None:
    spec = LdapSpec(tls=tls, base=LDAP_SUFFIX, login=LDAP_ROOT_DN, passwd=LDAP_ROOT_PASSWORD)
    await cancel_at_many_points(target(port_of(slapd, tls)), spec)


# --- a hostile server: it binds anyone, then floods the search ----------------------------------

BIND_OK = ldap.message(1, ldap.tlv(0x61, ldap.integer(0x0A, 0) + ldap.tlv(0x04, b"") * 2))


def entry(message_id: int, dn: bytes) -> bytes:
    return ldap.message(message_id, ldap.tlv(0x64, ldap.tlv(0x04, dn) + ldap.tlv(0x30, b"")))


@asynccontextmanager
async def flooding(flood: bytes, most: int = 1_000_000) -> AsyncIterator[tuple[int, list[int]]]:
    """A server on 127.0.0.1 that answers a bind, then sends ``flood`` until the client goes
    (``most`` times at the most); yields its port and how many floods each connection got."""
    sent: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sent.append(0)
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            await reader.read(1024)  # the bind request
            writer.write(BIND_OK)
            await reader.read(1024)  # the search request
            for _ in range(most):
                writer.write(flood)
                await writer.drain()
                await asyncio.sleep(0)  # the check runs on this loop too: let it read
                sent[-1] += 1
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], sent
    finally:
        server.close()
        await server.wait_closed()


FLOODS = {
    # ldirectord asks for one entry; a server may ignore the size limit and send every one.
    "entries": (
        entry(2, b"cn=again,dc=test" + b"x" * 200),
        "returned more than 1 entry (expected 1)",
    ),
    # Messages for another request are skipped, a bounded number of them.
    "other-ids": (entry(7, b"cn=other"), "LDAP server sent more than 64 messages"),
    "references": (
        ldap.message(2, ldap.tlv(0x73, ldap.tlv(0x04, b"ldap://elsewhere/"))),
        "LDAP server sent more than 64 messages",
    ),
}


@pytest.mark.parametrize(("flood", "reason"), FLOODS.values(), ids=FLOODS.keys())
async def test_a_flood_of_search_replies_is_bounded(flood: bytes, reason: str) -> None:
    async with flooding(flood) as (port, sent), leak_free():
        result, elapsed, peak = await measured_check(target(port), LdapSpec(base="dc=test"), 5)
    assert not result.ok
    assert result.reason.endswith(reason)
    assert elapsed < 2
    assert peak < 2 << 20, f"{peak} bytes allocated while reading the flood"
    assert sent[0] < 100_000  # the check hung up long before the flood ran dry


async def test_a_message_declared_too_large_is_refused_unread() -> None:
    huge = b"\x30\x84" + (64 << 20).to_bytes(4, "big")  # a 64 MiB message, never sent
    async with flooding(huge, most=1) as (port, _), leak_free():
        result = await run_check(target(port), LdapSpec(base="dc=test"), 5)
    assert (result.ok, result.reason) == (
        False,
        f"LDAP reply of {64 << 20} bytes is larger than {ldap.MAX_MESSAGE}",
    )
