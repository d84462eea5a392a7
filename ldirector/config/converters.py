"""Converters for the directives whose values have a small grammar of their own.

Pure (apart from checking that a log file's directory exists). Each returns the model value or
raises ``Invalid`` with the message reported at the directive's line.
"""

from __future__ import annotations

import difflib
import os
import re
from ipaddress import IPv4Address, ip_address

from ldirector.config.model import CheckType, DaemonState
from ldirector.config.sysctls import SYSCTLS, UNSUPPORTED
from ldirector.config.values import Invalid, digits, hint, unquote

FACILITIES = frozenset(
    [
        "auth",
        "authpriv",
        "cron",
        "daemon",
        "ftp",
        "kern",
        "lpr",
        "mail",
        "news",
        "syslog",
        "user",
        "uucp",
    ]
    + [f"local{n}" for n in range(8)]
)
_EMAIL_STATES = {s.value: s for s in DaemonState}


def checktype_value(value: str) -> tuple[CheckType, int]:
    """``checktype``: a keyword, or any value with digits for ``N`` (combined)."""
    if re.search("[0-9]", value):
        number = int(re.search(r"[0-9]+", value).group())  # type: ignore[union-attr]
        # checktype=0 means "negotiate every time", which is plain negotiate.
        return (CheckType.COMBINED, number) if number else (CheckType.NEGOTIATE, 0)
    try:
        checktype = CheckType(value)
    except ValueError:
        checktype = CheckType.COMBINED  # not a word ldirectord takes: reported just below
    if checktype is CheckType.COMBINED:
        raise Invalid(
            'checktype must be "connect", "negotiate", "on", "off", "ping", "external", '
            '"external-perl" or a positive number' + hint(value, [c for c in CheckType][:-1])
        )
    return checktype, 0


def email_states(value: str) -> tuple[DaemonState, ...]:
    """``emailalertstatus``: a comma list of states, ``all``, or ``none`` alone."""
    words = [w.strip() for w in unquote(value).split(",")]
    states: list[DaemonState] = []
    for word in words:
        if word == "all":
            states.extend(DaemonState)
        elif word == "none":
            if len(words) > 1:
                raise Invalid(f'invalid email alert status: "{value}" specified with "none"')
        elif word in _EMAIL_STATES:
            states.append(_EMAIL_STATES[word])
        else:
            raise Invalid(f'invalid email alert status at: "{word}"')
    return tuple(s for s in DaemonState if s in states)


def logfile_value(value: str) -> str:
    """``logfile``: an absolute path in an existing directory, or a syslog facility."""
    if value.startswith("/"):
        parent = os.path.dirname(value) or "/"
        if not os.path.isdir(parent):
            raise Invalid(f"unable to open logfile: {value} (directory {parent} does not exist)")
    elif value not in FACILITIES:
        raise Invalid(
            f"unable to open logfile: {value!r} is neither an absolute path nor a syslog facility"
        )
    return value


def netmask_value(value: str, family: int) -> IPv4Address | int:
    """``netmask``: a contiguous dotted-quad mask for IPv4, a prefix length for IPv6."""
    if family == 6:
        if not digits(value) or not 1 <= int(value) <= 128:
            raise Invalid("invalid netmask: a prefix length between 1 and 128 is required")
        return int(value)
    try:
        mask = IPv4Address(value)
    except ValueError:
        raise Invalid("invalid netmask: dotted quad notation is required") from None
    bits = int(mask)
    if bits and (bits | (bits - 1)) & 0xFFFFFFFF != 0xFFFFFFFF:
        raise Invalid(f"invalid netmask {value}: the one bits must be contiguous")
    return mask


def httpstatus_value(value: str) -> tuple[str, int]:
    """``httpstatus = [ADDRESS:]PORT``: where the status page listens; 127.0.0.1 by default."""
    text = unquote(value).strip()
    host, port_text = "127.0.0.1", text
    if text.startswith("["):
        inside, close, rest = text[1:].partition("]")
        host, port_text = inside, rest[1:] if close and rest.startswith(":") else ""
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    try:
        ip_address(host)
    except ValueError:
        raise Invalid(
            f"invalid httpstatus {text!r}: an IP address is required (httpstatus = 127.0.0.1:9555)"
        ) from None
    if not digits(port_text) or not 1 <= int(port_text) <= 65535:
        raise Invalid(f"invalid httpstatus {text!r}: a port 1..65535 is required")
    return host, int(port_text)


def sysctl_value(value: str) -> tuple[str, int]:
    """``ipvs_sysctl = NAME VALUE`` for a known integer toggle, range-checked."""
    words = value.split()
    if len(words) != 2:
        raise Invalid("ipvs_sysctl needs a name and a value: ipvs_sysctl = NAME VALUE")
    name, text = words
    if name in UNSUPPORTED:
        raise Invalid(f"IPVS sysctl {name} is not supported by ipvs_sysctl (not one integer)")
    if name not in SYSCTLS:
        hint = difflib.get_close_matches(name, list(SYSCTLS), n=1)
        more = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise Invalid(f"unknown IPVS sysctl {name!r}{more}")
    low, high = SYSCTLS[name]
    if text in ("yes", "no") and (low, high) == (0, 1):
        return name, int(text == "yes")
    if not re.fullmatch(r"-?[0-9]+", text) or not low <= int(text) <= high:
        raise Invalid(f"invalid value {text!r} for IPVS sysctl {name}: expected {low}..{high}")
    return name, int(text)
