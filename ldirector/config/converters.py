"""Converters for the directives whose values have a small grammar of their own.

Pure (apart from checking that a log file's directory exists, and reading the CA file of
``httpscafile``). Each returns the model value or raises ``Invalid`` with the message reported
at the directive's line.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import warnings
from ipaddress import IPv4Address, ip_address

from checks.types import DnsQueryType
from ldirector.config.files import read_regular
from ldirector.config.model import CheckType, DaemonState
from ldirector.config.sysctls import SYSCTLS, UNSUPPORTED
from ldirector.config.values import Invalid, decimal, hint, parse_port, shown, unquote

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
#: A CA bundle is a few hundred kilobytes at most (the whole system store is about 200 KiB).
MAX_CA_FILE = 4 * 1024 * 1024


def checktype_value(value: str) -> tuple[CheckType, int]:
    """``checktype``: a keyword, or any value with digits for ``N`` (combined)."""
    if m := re.search("[0-9]+", value):
        number = decimal(m.group(), 0, 2**31 - 1)
        if number is None:
            raise Invalid(f"invalid checktype {shown(value)}: N is at most 2147483647")
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
            f"unable to open logfile: {shown(value)} is neither an absolute path "
            "nor a syslog facility"
        )
    return value


def netmask_value(value: str, family: int) -> IPv4Address | int:
    """``netmask``: a contiguous dotted-quad mask for IPv4, a prefix length for IPv6."""
    if family == 6:
        prefix = decimal(value, 1, 128)
        if prefix is None:
            raise Invalid("invalid netmask: a prefix length between 1 and 128 is required")
        return prefix
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
            f"invalid httpstatus {shown(text)}: an IP address is required "
            "(httpstatus = 127.0.0.1:9555)"
        ) from None
    try:
        return host, parse_port(port_text)
    except Invalid:
        raise Invalid(f"invalid httpstatus {shown(text)}: a port 1..65535 is required") from None


def sysctl_value(value: str) -> tuple[str, int]:
    """``ipvs_sysctl = NAME VALUE`` for a known integer toggle, range-checked."""
    words = value.split()
    if len(words) != 2:
        raise Invalid("ipvs_sysctl needs a name and a value: ipvs_sysctl = NAME VALUE")
    name, text = words
    if name in UNSUPPORTED:
        raise Invalid(f"IPVS sysctl {name} is not supported by ipvs_sysctl (not one integer)")
    if name not in SYSCTLS:
        raise Invalid(f"unknown IPVS sysctl {shown(name)}{hint(name, SYSCTLS)}")
    low, high = SYSCTLS[name]
    if text in ("yes", "no") and (low, high) == (0, 1):
        return name, int(text == "yes")
    negative = text.startswith("-")
    magnitude = decimal(text[1:] if negative else text, 0, max(-low, high))
    number = None if magnitude is None else -magnitude if negative else magnitude
    if number is None or not low <= number <= high:
        raise Invalid(f"invalid value {shown(text)} for IPVS sysctl {name}: expected {low}..{high}")
    return name, number


def fallbackcommand_value(value: str, glob: bool) -> tuple[str, ...]:
    """``fallbackcommand``: the words of a command, split as the shell ldirectord uses would.

    The global value is kept verbatim by ldirectord (its shell strips the quotes); per virtual
    one pair of enclosing quotes is removed first. Either way the words come out the same.
    """
    command = value if glob else unquote(value)
    try:
        words = tuple(shlex.split(command))
    except ValueError as exc:
        raise Invalid(f"invalid fallback command {shown(command)}: {exc}") from None
    if not words or not words[0]:
        raise Invalid("invalid fallback command")
    return words


def compile_receive(receive: str) -> re.Pattern[str]:
    """A receive string is a regular expression (Perl's; Python's syntax is nearly the same)."""
    try:
        # Python warns (FutureWarning) about sets like "[[a]" whose meaning it may change one
        # day; today it reads them as Perl does, and a warning must not escape the loader.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return re.compile(receive)
    except (re.error, RecursionError, OverflowError) as exc:
        raise Invalid(f"invalid receive string: not a regular expression ({exc})") from None


def cafile_value(value: str) -> tuple[str, str]:
    """``httpscafile``: the path, and the PEM text of the CA certificates read from it.

    The file is read here, when the config is loaded, so a reload picks up a changed file and
    a check never reads one. It must hold at least one certificate.
    """
    path = unquote(value).strip()
    if not path.startswith("/"):
        raise Invalid(f"invalid httpscafile {shown(path)}: an absolute path is required")
    try:
        data = read_regular(path, MAX_CA_FILE)
    except OSError as exc:
        raise Invalid(f"cannot read httpscafile {path}: {exc.strerror or exc}") from None
    # PEM is ASCII; anything else holds no certificate this directive can take.
    pem = data.decode("ascii", "replace")
    # Here, not at the top: only an https check with its own CA needs ssl to load a config.
    import ssl

    store = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with contextlib.suppress(ssl.SSLError, ValueError, TypeError):
        store.load_verify_locations(cadata=pem)
    if not store.cert_store_stats()["x509"]:
        raise Invalid(f"httpscafile {path} holds no PEM certificate")
    return path, pem


def dnsquerytype_value(value: str) -> DnsQueryType:
    """``dnsquerytype``: one of the record types the DNS check asks for, any case."""
    try:
        return DnsQueryType(unquote(value).strip().upper())
    except ValueError:
        raise Invalid(
            "dnsquerytype must be " + ", ".join(DnsQueryType) + hint(value.upper(), DnsQueryType)
        ) from None
