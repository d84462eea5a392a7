"""Names resolved while a config loads: host names (through an injectable ``Resolver``, so that
tests never depend on DNS) and /etc/services port names."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from ipaddress import ip_address

from ldirector.config.values import Invalid, IPAddress, clip, decimal, digits, literal

#: (name, family 4|6) -> address; raises ``Invalid`` when the name does not resolve.
Resolver = Callable[[str, int], IPAddress]

_DIGITS = re.compile(r"[0-9]+")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")


def port(text: str, protocol: str | None, what: str) -> int:
    """A port number 0..65535 or an /etc/services name for ``protocol`` (None: any protocol)."""
    if _DIGITS.fullmatch(text):
        number = decimal(text, 0, 65535)
        if number is None:
            raise Invalid(f"invalid port ({clip(text)}) for {what}: ports are 0..65535")
        return number
    try:
        if protocol is None:
            return socket.getservbyname(text)
        return socket.getservbyname(text, protocol)
    except OSError:
        proto = f"/{protocol}" if protocol else ""
        raise Invalid(
            f"invalid port ({clip(text)}) for {what} (could not resolve port{proto})"
        ) from None


def host(text: str, family: int, resolve: Resolver, what: str) -> IPAddress:
    """An address of ``family`` (4 or 6) from a literal or a host name resolved now."""
    address = literal(text)
    if address is not None:
        if address.version != family:
            raise Invalid(f"invalid address ({text}) for {what}: not an IPv{family} address")
        return address
    if not _HOSTNAME.fullmatch(text) or digits(text.replace(".", "")):
        raise Invalid(f"invalid address ({text}) for {what}")
    return resolve(text, family)


def system_resolver(timeout: float = 5.0) -> Resolver:
    """Resolve with getaddrinfo, caching each name, giving up after ``timeout`` seconds.

    getaddrinfo cannot be cancelled, so it runs in a daemon thread that is abandoned on timeout:
    a dead DNS server costs ``timeout`` once per name, never a hung ``ldirector check``.
    """
    cache: dict[tuple[str, int], IPAddress | str] = {}

    def lookup(name: str, family: int) -> IPAddress | str:
        box: list[IPAddress | str] = []
        af = socket.AF_INET6 if family == 6 else socket.AF_INET

        def work() -> None:
            try:
                infos = socket.getaddrinfo(name, None, af, socket.SOCK_STREAM)
                box.append(ip_address(infos[0][4][0]))
            except (OSError, UnicodeError, IndexError, ValueError) as exc:
                box.append(str(exc) or "no address")

        thread = threading.Thread(target=work, name=f"resolve {name}", daemon=True)
        thread.start()
        thread.join(timeout)
        return box[0] if box else f"timed out after {timeout:g}s"

    def resolve(name: str, family: int) -> IPAddress:
        key = (name.lower(), family)
        if key not in cache:
            cache[key] = lookup(name, family)
        found = cache[key]
        if isinstance(found, str):
            raise Invalid(f"could not resolve host {name!r} (IPv{family}): {found}")
        return found

    return resolve
