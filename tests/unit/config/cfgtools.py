"""Helpers of the config tests: a resolver that never touches DNS, and loaders using it."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from ldirector.config import Config, load, loads
from ldirector.config.values import Invalid

TESTDATA = Path(__file__).parent / "testdata"
HOSTNAME = "director.test"

#: Names the fake resolver knows (a few per family), standing in for DNS and /etc/hosts.
NAMES: dict[tuple[str, int], str] = {
    ("localhost", 4): "127.0.0.1",
    ("localhost", 6): "::1",
    ("sql01", 4): "10.1.0.1",
    ("sql02", 4): "10.1.0.2",
    ("sql03", 4): "10.1.0.3",
    ("www.example.test", 4): "192.0.2.80",
    ("www.example.test", 6): "2001:db8::80",
}


def fake_resolver(name: str, family: int) -> IPv4Address | IPv6Address:
    """Resolve from NAMES; anything else fails like a name that does not exist."""
    found = NAMES.get((name.lower(), family))
    if found is None:
        raise Invalid(f"could not resolve host {name!r} (IPv{family}): not found")
    return ip_address(found)


def no_mysql_driver(module: str) -> bool:
    """Pretend every optional driver is installed except aiomysql."""
    return module != "aiomysql"


def all_drivers(module: str) -> bool:
    """Pretend every optional driver is installed."""
    del module
    return True


def load_fixture(path: Path | str, have_driver: Callable[[str], bool] = all_drivers) -> Config:
    """Load a file the way the tests expect: fake resolver, fixed host name."""
    return load(path, resolver=fake_resolver, host=HOSTNAME, have_driver=have_driver)


def load_text(text: str | bytes, path: str = "test.cf") -> Config:
    """Load config text the same way."""
    return loads(text, path, resolver=fake_resolver, host=HOSTNAME, have_driver=all_drivers)
