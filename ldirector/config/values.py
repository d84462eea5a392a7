"""Value grammars for the config parser: yes/no, numbers, ports, marks, quoted strings, IP
literals. Pure: no name is resolved here (``ldirector.config.names`` does that), so the other
layers may parse numbers and ports with the same rules.

Each raises ``Invalid`` with the one-line message the parser reports at the directive's line.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address, ip_address

IPAddress = IPv4Address | IPv6Address

_DIGITS = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def digits(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also takes superscripts and other scripts' digits)."""
    return text.isascii() and text.isdigit()


def hint(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``choices``, else nothing."""
    import difflib  # only a config with a mistake needs it

    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Invalid(ValueError):
    """A value is wrong; the message is what the user sees after ``FILE:LINE: error:``.

    A ValueError, so that layers importing ``parse_port`` or ``parse_fwmark`` need not know it.
    """


class Lenient(Exception):
    """A value ldirectord accepts by reading only its first digits; carries the value it gets."""

    def __init__(self, value: int, message: str) -> None:
        super().__init__(message)
        self.value = value


def decimal(text: str, minimum: int, maximum: int) -> int | None:
    """``text`` as a whole number in ``minimum..maximum``, or None.

    Only ASCII digits count (``int()`` also reads '٣', ``isdigit()`` also takes '³'), and the
    length is checked before converting: ``int()`` of a few thousand digits raises.
    """
    if not digits(text):
        return None
    significant = text.lstrip("0") or "0"
    if len(significant) > len(str(maximum)):
        return None
    number = int(significant)
    return number if minimum <= number <= maximum else None


def parse_port(text: str, minimum: int = 1) -> int:
    """A port number written in ASCII digits, ``minimum..65535``; ``Invalid`` otherwise.

    The one port grammar: the config and the command line both use it.
    """
    number = decimal(text, minimum, 65535)
    if number is None:
        raise Invalid(f"invalid port {clip(text)}: expected a number {minimum}..65535")
    return number


def parse_fwmark(text: str) -> int:
    """A firewall mark written in ASCII digits, 1..4294967295; ``Invalid`` otherwise."""
    number = decimal(text, 1, 2**32 - 1)
    if number is None:
        raise Invalid(f"invalid firewall mark {clip(text)}: marks are 1..4294967295")
    return number


def clip(text: str, limit: int = 60) -> str:
    """``text`` cut short for a diagnostic, so that one line stays readable."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(text: str) -> str:
    """``text`` quoted and cut short for a diagnostic."""
    return repr(clip(text))


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
        number = decimal(text, minimum, maximum)
        if number is None:
            raise Invalid(f"{message}: {clip(text)} is not in {minimum}..{maximum}")
        return number
    m = _DIGITS.search(text)
    if m is None:
        raise Invalid(f"{message}: {shown(text)}" if text else message)
    number = decimal(m.group(), minimum, maximum)
    if number is None:
        raise Invalid(f"{message}: {shown(text)}")
    raise Lenient(number, f"{shown(text)} is read as {number}, as ldirectord does")


def seconds(value: str | None, message: str) -> float:
    """A positive number of seconds; a fraction (``2.5``) is an ldirector extension."""
    text = value or ""
    if _NUMBER.fullmatch(text):
        number = float(text)
        if number <= 0 or number > 86400 * 365:
            raise Invalid(f"{message}: {clip(text)} is not a positive number of seconds")
        return number
    return float(integer(value, message, minimum=1, maximum=86400 * 365))


def duration(value: str | None, message: str) -> float:
    """Seconds, 0 or more, as a plain number: an ldirector extension, so no lenient reading."""
    text = (value or "").strip()
    if not _NUMBER.fullmatch(text) or float(text) > 86400 * 365:
        raise Invalid(f"{message}: {shown(text)} is not a number of seconds (0 or more)")
    return float(text)


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
        raise Invalid(f"missing closing quote in {shown(text)}")
    if text[end + 1 :].strip():
        raise Invalid(f"unexpected text after the closing quote: {shown(text[end + 1 :].strip())}")
    return text[1:end]


@functools.lru_cache(maxsize=65536)  # configs repeat the same few reals many times
def literal(text: str) -> IPAddress | None:
    """An IP literal, or None when ``text`` is not one (then it may be a host name)."""
    try:
        return ip_address(text)
    except ValueError:
        return None
