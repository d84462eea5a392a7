"""Parsers for the three address directives: ``virtual``/``virtual6``, ``real``/``real6`` and
``fallback``/``fallback6``.

Pure apart from the injected resolver. Unlike ldirectord, whose regexes are unanchored, every form
here must match the whole value: a bracket range, a missing port or a weight found inside a receive
string are errors, never a silently different server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address

from ldirector.config.names import Resolver, host, port
from ldirector.config.values import (
    Invalid,
    IPAddress,
    clip,
    decimal,
    digits,
    hint,
    literal,
    parse_fwmark,
    shown,
)
from ldirector.ipvs.types import Forward

MAX_RANGE = 65536  # a /16 of reals is already far beyond any sane virtual

_PORT = r"[A-Za-z0-9_-]+"
_V6_PORT = re.compile(rf"\[([^\]]*)\](?::({_PORT}))?")
_NAME_PORT = re.compile(rf"([A-Za-z0-9._+-]+)(?::({_PORT}))?")
_BRACKET_RANGE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.\[[0-9]+\s*-\s*[0-9]+\]")
_REAL_HOST = re.compile(
    rf"(?P<first>\[[^\]]*\]|[A-Za-z0-9._-]+)(?:->(?P<last>\[[^\]]*\]|[A-Za-z0-9._-]+))?"
    rf"(?::(?P<port>{_PORT}))?"
)
_REAL_REST = re.compile(
    r'(?:\s+(?P<weight>[0-9]+))?(?:\s+"(?P<request>[^"]*)"\s*[,\s]\s*"(?P<receive>[^"]*)")?'
    r"(?P<thresholds>(?:\s+[lu]:\S*)*)\s*"
)


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    """A parsed ``virtual=``: a firewall mark, or an address and an unresolved port word."""

    fwmark: int | None
    address: IPAddress | None
    port_word: str


@dataclass(frozen=True, slots=True)
class RealLine:
    """A parsed ``real=`` line; ranges are already expanded into ``addresses``."""

    addresses: tuple[IPAddress, ...]
    port: int
    forward: Forward
    weight: int
    request: str | None
    receive: str | None
    lower: int
    upper: int


#: The forwarding methods a real or fallback may name (the kernel's LOCAL is not one of them).
FORWARD_WORDS = {f.word: f for f in (Forward.GATE, Forward.MASQ, Forward.IPIP)}


def forward_method(word: str) -> Forward:
    """``gate``, ``masq`` or ``ipip``."""
    try:
        return FORWARD_WORDS[word]
    except KeyError:
        raise Invalid(
            "forward method must be gate, masq or ipip" + hint(word, FORWARD_WORDS)
        ) from None


def parse_virtual(value: str, family: int, resolve: Resolver) -> VirtualAddress:
    """``a.b.c.d:port``, ``name:port``, ``[v6]:port`` (virtual6) or a firewall mark number."""
    if digits(value):
        return VirtualAddress(fwmark=parse_fwmark(value), address=None, port_word="0")
    if m := _V6_PORT.fullmatch(value):
        if family == 4:
            raise Invalid('cannot specify an IPv6 address here. please use "virtual6" instead.')
        address = literal(m.group(1))
        if address is None or address.version != 6:
            raise Invalid(f"invalid ipv6 address for virtual server: {m.group(1)!r}")
        if m.group(2) is None:
            raise Invalid(f"virtual service {value} needs a port: write [{address}]:PORT")
        return VirtualAddress(fwmark=None, address=address, port_word=m.group(2))
    m = _NAME_PORT.fullmatch(value)
    if m is None:
        raise Invalid(f"invalid address for virtual service: {shown(value)}")
    name, port_word = m.group(1), m.group(2)
    if port_word is None:
        if literal(name) is not None:
            first = name.split(".")[0]
            raise Invalid(
                f"virtual service {name} needs a port: write {name}:PORT, or a bare number for a "
                f"firewall mark (ldirectord would silently read this as firewall mark {first})"
            )
        raise Invalid(f"virtual service {name} needs a port: write {name}:PORT")
    found = literal(name)
    if found is not None and found.version == 4 and family == 6:
        raise Invalid('cannot specify an IPv4 address here. please use "virtual" instead.')
    try:
        address = host(name, family, resolve, "virtual service")
    except Invalid as exc:
        raise Invalid(f"invalid address for virtual service: {exc}") from None
    return VirtualAddress(fwmark=None, address=address, port_word=port_word)


def _real_host(text: str, family: int, resolve: Resolver, end: bool) -> IPAddress:
    bracketed = text.startswith("[")
    inner = text[1:-1] if bracketed else text
    found = literal(inner)
    if found is not None and found.version != family:
        use = "real6" if found.version == 6 else "real"
        raise Invalid(f'{inner} is an IPv{found.version} address: please use "{use}" for it')
    if bracketed and family == 4:
        raise Invalid('cannot specify an IPv6 address here.  please use "real6" instead')
    try:
        return host(inner, family, resolve, "real server")
    except Invalid as exc:
        which = "end host" if end else "host"
        raise Invalid(
            f"invalid address ({inner}) for real server (could not resolve {which}): {exc}"
        ) from None


def parse_real(value: str, family: int, resolve: Resolver) -> RealLine:
    """``HOST[->HOST2][:PORT] gate|masq|ipip [WEIGHT] ["REQUEST","RECEIVE"] [l:N] [u:N]``."""
    if _BRACKET_RANGE.search(value):
        raise Invalid(
            "bracket ranges like a.b.c.[x-y] are not supported: write a.b.c.x->a.b.c.y "
            "(ldirectord would silently misread this line)"
        )
    if not value.strip():
        raise Invalid("invalid address for real server (wrong format)")
    head, *more = value.split(None, 1)
    tail = " " + more[0] if more else ""
    m = _REAL_HOST.fullmatch(head)
    if m is None:
        raise Invalid(f"invalid address for real server (wrong format): {head!r}")
    words = tail.split()
    if not words:
        raise Invalid("real server needs a forwarding method: gate, masq or ipip")
    forward = forward_method(words[0])
    rest = tail.lstrip()[len(words[0]) :]
    r = _REAL_REST.fullmatch(rest)
    if r is None:
        raise Invalid(f'Invalid real server line, around "{rest.strip()}"')

    first = _real_host(m.group("first"), family, resolve, end=False)
    addresses: tuple[IPAddress, ...] = (first,)
    if m.group("last") is not None:
        if family == 6:
            raise Invalid("Address range for IPv6 is not supported yet")
        last = _real_host(m.group("last"), family, resolve, end=True)
        lo, hi = int(first), int(last)
        if lo > hi:
            raise Invalid(f"invalid range {first}->{last}: the first address is after the last")
        if hi - lo + 1 > MAX_RANGE:
            raise Invalid(
                f"range {first}->{last} has {hi - lo + 1} addresses (at most {MAX_RANGE})"
            )
        addresses = tuple(IPv4Address(n) for n in range(lo, hi + 1))

    port_word = m.group("port")
    real_port = 0 if port_word is None else port(port_word, None, "real server")
    weight_text = r.group("weight") or "1"
    weight = decimal(weight_text, 0, 2**31 - 1)
    if weight is None:
        raise Invalid(f"invalid weight {clip(weight_text)}: at most 2147483647")
    request, receive = r.group("request"), r.group("receive")
    if request is not None and not request:
        raise Invalid("no request string specified")
    if receive is not None and not receive:
        raise Invalid("invalid receive string")
    lower = upper = 0
    seen: set[str] = set()
    for word in r.group("thresholds").split():
        kind, number = word[0], decimal(word[2:], 0, 2**32 - 1)
        if number is None:
            raise Invalid(
                f"invalid threshold {clip(word)!r}: expected {kind}:N with N in 0..4294967295"
            )
        if kind in seen:
            raise Invalid(f"threshold {kind}: given twice")
        seen.add(kind)
        if kind == "l":
            lower = number
        else:
            upper = number
    return RealLine(
        addresses=addresses,
        port=real_port,
        forward=forward,
        weight=weight,
        request=request,
        receive=receive,
        lower=lower,
        upper=upper,
    )


@dataclass(frozen=True, slots=True)
class FallbackLine:
    """A parsed ``fallback=``; ``port_word`` is None when no port was given."""

    address: IPAddress
    port_word: str | None
    forward: Forward


def parse_fallback(value: str, family: int, resolve: Resolver) -> FallbackLine:
    """``host[:port] [gate|masq|ipip]`` (``[v6][:port]`` in fallback6); forward defaults to gate."""
    words = value.split()
    if not words or len(words) > 2:
        raise Invalid(f"invalid fallback server: {shown(value)}")
    forward = forward_method(words[1]) if len(words) == 2 else Forward.GATE
    m = _V6_PORT.fullmatch(words[0]) or _NAME_PORT.fullmatch(words[0])
    if m is None:
        raise Invalid(f"invalid fallback server: {words[0]!r}")
    bracketed = words[0].startswith("[")
    found = literal(m.group(1))
    if (bracketed or (found is not None and found.version == 6)) and family == 4:
        raise Invalid('cannot specify "fallback6" here.  please use "fallback" instead')
    if found is not None and found.version == 4 and family == 6:
        raise Invalid('cannot specify "fallback" here.  please use "fallback6" instead')
    try:
        address = host(m.group(1), family, resolve, "fallback server")
    except Invalid as exc:
        raise Invalid(f"invalid fallback server: {exc}") from None
    return FallbackLine(address=address, port_word=m.group(2), forward=forward)
