"""Value converters for the config parser: yes/no, numbers, quoted strings, ports, host names.

Each raises ``Invalid`` with the one-line message the parser reports at the directive's line. Name
resolution goes through an injectable ``Resolver`` so that tests never depend on DNS.
"""

from __future__ import annotations

import difflib
import functools
import re
import socket
import threading
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address

IPAddress = IPv4Address | IPv6Address

#: (name, family 4|6) -> address; raises ``Invalid`` when the name does not resolve.
Resolver = Callable[[str, int], IPAddress]

_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")


def digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes superscripts and other scripts' digits)."""
    return text.isascii() and text.isdigit()


def hint(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``choices``, else nothing."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Invalid(Exception):
    """A value is wrong; the message is what the user sees after ``FILE:LINE: error:``."""


class Lenient(Exception):
    """A value ldirectord accepts by reading only its first digits; carries the value it gets."""

    def __init__(self, value: int, message: str) -> None:
        super().__init__(message)
        self.value = value


def yes_no(name: str, value: str | None) -> bool:
    """``yes`` or ``no``, exactly (trailing blanks and comments are already gone)."""
    if value == "yes":
        return True
    if value == "no":
        return False
    raise Invalid(f"{name} must be 'yes' or 'no'")


def integer(value: str | None, message: str, minimum: int = 1, maximum: int = 2**31 - 1) -> int:
    """A whole number in range. ldirectord reads the first run of digits anywhere in the value,
    so ``abc7`` still means 7: that raises ``Lenient`` (a warning), anything without digits
    raises ``Invalid``."""
    text = value or ""
    if _DIGITS.fullmatch(text):
        number = int(text)
        if not minimum <= number <= maximum:
            raise Invalid(f"{message}: {text} is not in {minimum}..{maximum}")
        return number
    m = _DIGITS.search(text)
    if m is None:
        raise Invalid(f"{message}: {text!r}" if text else message)
    number = int(m.group())
    if not minimum <= number <= maximum:
        raise Invalid(f"{message}: {text!r}")
    raise Lenient(number, f"{text!r} is read as {number}, as ldirectord does")


def seconds(value: str | None, message: str) -> float:
    """A positive number of seconds; a fraction (``2.5``) is an ldirector extension."""
    text = value or ""
    if _NUMBER.fullmatch(text):
        number = float(text)
        if number <= 0 or number > 86400 * 365:
            raise Invalid(f"{message}: {text} is not a positive number of seconds")
        return number
    return float(integer(value, message, minimum=1, maximum=86400 * 365))


def quoted(value: str | None, message: str) -> str:
    """A ``"double-quoted"`` value (ldirector also takes it bare); empty is an error."""
    text = unquote(value or "")
    if not text:
        raise Invalid(message)
    return text


def unquote(text: str) -> str:
    """Strip one pair of enclosing double quotes; text after the closing quote is an error."""
    if not text.startswith('"'):
        return text
    end = text.rfind('"')
    if end == 0:
        raise Invalid(f"missing closing quote in {text!r}")
    if text[end + 1 :].strip():
        raise Invalid(f"unexpected text after the closing quote: {text[end + 1 :].strip()!r}")
    return text[1:end]


def port(text: str, protocol: str | None, what: str) -> int:
    """A port number 0..65535 or an /etc/services name for ``protocol`` (None: any protocol)."""
    if _DIGITS.fullmatch(text):
        number = int(text)
        if number > 65535:
            raise Invalid(f"invalid port ({text}) for {what}: ports are 0..65535")
        return number
    try:
        if protocol is None:
            return socket.getservbyname(text)
        return socket.getservbyname(text, protocol)
    except OSError:
        proto = f"/{protocol}" if protocol else ""
        raise Invalid(f"invalid port ({text}) for {what} (could not resolve port{proto})") from None


@functools.lru_cache(maxsize=65536)  # configs repeat the same few reals many times
def literal(text: str) -> IPAddress | None:
    """An IP literal, or None when ``text`` is not one (then it may be a host name)."""
    try:
        return ip_address(text)
    except ValueError:
        return None


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
