"""What the converter tells the operator, and the small value grammars keepalived shares.

Every keepalived setting the converter cannot express becomes one warning at its FILE:LINE;
the same line and message are reported once, however many virtual services share the block
(a ``virtual_server group`` converts its body once per member).
"""

from __future__ import annotations

import re
from ipaddress import ip_address

from ldirector.config.errors import Diagnostic, Severity, Span
from ldirector.config.values import IPAddress, decimal

_TRUE = frozenset({"on", "true", "yes"})
_FALSE = frozenset({"off", "false", "no"})
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")
_KEYWORD = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,59}")
_NUMBER = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")
#: A year: the longest interval or timeout ldirectord.cf takes.
MAX_SECONDS = 86400 * 365


class Report:
    """The warnings of one conversion, in the order found, without repeats."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []
        self._seen: set[tuple[Span, str]] = set()

    def drop(self, span: Span, message: str) -> None:
        """``message`` about the setting at ``span``, which the output does not carry."""
        if (span, message) not in self._seen:
            self._seen.add((span, message))
            self.diagnostics.append(Diagnostic(Severity.WARNING, span, message))


def name(word: str) -> str:
    """A keyword for a message: as written when it is one, else quoted like :func:`shown`."""
    return word if _KEYWORD.fullmatch(word) else shown(word)


def shown(text: str) -> str:
    """A keepalived word quoted for a message, cut to a readable length."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def flag(args: list[str]) -> bool | None:
    """keepalived's <BOOL>: no word means on; None when the word is not one."""
    if not args:
        return True
    word = args[0].lower()
    return True if word in _TRUE else False if word in _FALSE else None


def timer(word: str) -> float | None:
    """A positive number of seconds, fractions allowed; None when it is not one."""
    if _NUMBER.fullmatch(word) is None:
        return None
    value = float(word)
    return value if 0 < value <= MAX_SECONDS else None


def whole(word: str, low: int, high: int) -> int | None:
    """A decimal number in low..high, else None."""
    return decimal(word, low, high)


def address(word: str) -> IPAddress | None:
    """An IP address literal (brackets allowed around IPv6), else None."""
    try:
        return ip_address(word.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


def safe(text: str) -> bool:
    """Whether ``text`` can be written between double quotes in ldirectord.cf: printable (no
    control character, nor a byte that was not UTF-8), without a double quote."""
    return bool(text) and '"' not in text and text.isprintable()


def hostname(word: str) -> bool:
    """Whether ``word`` is a host or DNS name (letters, digits, ``-``, ``_`` and dots)."""
    return _HOSTNAME.fullmatch(word) is not None
