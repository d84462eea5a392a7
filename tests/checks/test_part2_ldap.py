"""service=ldap and ldaps against a private slapd seeded with slapadd."""

# ruff: noqa: S106 - the passwords here are the test daemons' own

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from part2.daemons_data import LDAP_ROOT_DN, LDAP_ROOT_PASSWORD, LDAP_SUFFIX, start_slapd
from part2.support import (
    Daemon,
    assert_times_out_cleanly,
    cancel_at_many_points,
    hung_tcp,
    probe,
    refused_tcp,
    running,
    target,
)

from checks import ldap
from checks.types import LdapSpec

pytestmark = pytest.mark.daemon
SCHEMES = pytest.mark.parametrize("tls", [False, True], ids=["ldap", "ldaps"])


@pytest.fixture(scope="session")
def slapd() -> Iterator[Daemon]:
    with running(start_slapd()) as daemon:
        yield daemon


def port_of(slapd: Daemon, tls: bool) -> int:
    return slapd.ports["ldaps" if tls else "ldap"]


@SCHEMES
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_anonymous_base_search(slapd: Daemon, tls: bool, host: str) -> None:
    result = await probe(target(port_of(slapd, tls), host), LdapSpec(tls=tls, base=LDAP_SUFFIX))
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
    result = await probe(target(port_of(slapd, tls)), spec)
    assert result.ok, result.reason


async def test_root_dse_with_an_empty_base(slapd: Daemon) -> None:
    result = await probe(target(port_of(slapd, False)), LdapSpec())
    assert (result.ok, result.reason) == (True, "LDAP entry (root DSE)")


@SCHEMES
async def test_wrong_password_is_down(slapd: Daemon, tls: bool) -> None:
    spec = LdapSpec(tls=tls, base=LDAP_SUFFIX, login=LDAP_ROOT_DN, passwd="wrong")
    result = await probe(target(port_of(slapd, tls)), spec)
    assert not result.ok
    assert result.reason == f"LDAP bind as '{LDAP_ROOT_DN}' failed: invalidCredentials (49)"


async def test_missing_base_is_down(slapd: Daemon) -> None:
    base = f"ou=nobody,{LDAP_SUFFIX}"
    result = await probe(target(port_of(slapd, False)), LdapSpec(base=base))
    assert not result.ok
    assert result.reason == f"LDAP search of '{base}' failed: noSuchObject (32)"


async def test_entry_hidden_by_acl_is_down(slapd: Daemon) -> None:
    base = f"ou=hidden,{LDAP_SUFFIX}"
    result = await probe(target(port_of(slapd, False)), LdapSpec(base=base))
    assert not result.ok
    assert result.reason == f"LDAP search of '{base}' returned 0 entries (expected 1)"
    # The same search bound as the admin sees the entry.
    spec = LdapSpec(base=base, login=LDAP_ROOT_DN, passwd=LDAP_ROOT_PASSWORD)
    assert (await probe(target(port_of(slapd, False)), spec)).ok


async def test_receive_not_in_dn_is_down(slapd: Daemon) -> None:
    spec = LdapSpec(base=LDAP_SUFFIX, receive=re.compile("ou=people"))
    result = await probe(target(port_of(slapd, False)), spec)
    assert not result.ok
    assert result.reason == f"receive 'ou=people' not found in DN '{LDAP_SUFFIX}'"


async def test_ldaps_against_the_plain_port_is_down(slapd: Daemon) -> None:
    # slapd answers a TLS ClientHello on its plain port by resetting the connection.
    result = await probe(target(port_of(slapd, False)), LdapSpec(tls=True, base=LDAP_SUFFIX))
    assert (result.ok, result.reason) == (False, "connection reset by peer")


@SCHEMES
async def test_refused(tls: bool) -> None:
    with refused_tcp() as port:
        result = await probe(target(port), LdapSpec(tls=tls, base=LDAP_SUFFIX))
    # ldirectord bug B14 counted this failure twice; here it is one Result.
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
