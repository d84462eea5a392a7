"""GET_DEST replies read with one `struct` call, by the layout the kernel used before.

A kernel lays out every destination reply alike: the same attributes, in the same order, of the
same sizes; only the values differ. Walking them one by one (`decode.dest`) cost a quarter of the
daemon's CPU at 1,000 reals under emulation, nearly all of it in whole-table resyncs. So the walk
reads the first reply of each size, this module learns that reply's layout, and every later
reply of the same size is unpacked by one precompiled `struct` whose attribute headers (length
and type, flag bits included) must equal the learned ones. Anything else (another kernel, an
entry another tool wrote, a hostile reply) falls back to the walk, which stays the reference: a
layout is kept only after it decoded its own reply exactly as the walk did.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from operator import itemgetter
from typing import Any

from ldirector.ipvs import genl
from ldirector.ipvs.types import Dest, DestCounters, Family, Forward, Stats

#: Distinct reply sizes remembered: a table mixes a few (IPv4 and IPv6 reals are alike).
MAX_LAYOUTS = 8
_STATS_KINDS = (genl.DEST_STATS64, genl.DEST_STATS)
#: The destination attributes read as numbers; the address is read as bytes, the rest skipped.
_NUMBERS = frozenset(
    {
        genl.DEST_PORT,
        genl.DEST_FWD,
        genl.DEST_WEIGHT,
        genl.DEST_U_THRESH,
        genl.DEST_L_THRESH,
        genl.DEST_ACTIVE,
        genl.DEST_INACT,
        genl.DEST_PERSIST,
        genl.DEST_AF,
    }
)
_REQUIRED = frozenset({genl.DEST_ADDR, genl.DEST_PORT, genl.DEST_FWD, genl.DEST_WEIGHT})
#: Destination attributes a reply may leave out, read as 0 then.
_OPTIONAL = (
    genl.DEST_U_THRESH,
    genl.DEST_L_THRESH,
    genl.DEST_ACTIVE,
    genl.DEST_INACT,
    genl.DEST_PERSIST,
)
_VALUE = {1: "B", 2: "H", 4: "I", 8: "Q"}
_FORWARDS = {f.value: f for f in Forward}
_FAMILIES = {f.value: f for f in Family}


@dataclass(frozen=True, slots=True)
class _Layout:
    unpack: struct.Struct
    headers: itemgetter[Any]  # every attribute header's length and type, in order
    expected: tuple[int, ...]
    fields: dict[int, int]  # a destination attribute's type: the index of its value
    #: The thresholds' and connection counts' indexes, in `_OPTIONAL` order; -1: absent (0).
    optional: tuple[int, ...]
    stats: itemgetter[Any] | None  # the ten counters, in `Stats` order


class Layouts:
    """The layouts learned so far, by reply size. Losing them only costs speed."""

    def __init__(self) -> None:
        self._by_size: dict[int, _Layout | None] = {}

    def read(self, payload: memoryview, family: Family) -> Dest | None:
        """``payload`` as a Dest when a learned layout fits it exactly, else None (walk it)."""
        layout = self._by_size.get(len(payload))
        if layout is None:
            return None
        values = layout.unpack.unpack_from(payload)
        if layout.headers(values) != layout.expected:
            return None
        return _build(layout, values, family)

    def learn(self, payload: memoryview, family: Family, walked: Dest) -> None:
        """Keep the layout of ``payload``, which the walk read as ``walked``, if it reads the
        same through this module. The newest layout of a size replaces an older one."""
        size = len(payload)
        if size not in self._by_size and len(self._by_size) >= MAX_LAYOUTS:
            return
        layout = _layout(payload)
        if layout is not None:
            again = _build(layout, layout.unpack.unpack_from(payload), family)
            if again is None or again != walked or again.counters != walked.counters:
                layout = None
        self._by_size[size] = layout


def _build(layout: _Layout, values: tuple[Any, ...], family: Family) -> Dest | None:
    """The Dest the unpacked ``values`` hold; None where the walk would find it unreadable."""
    fields = layout.fields
    at = fields.get(genl.DEST_AF)
    af = _FAMILIES.get(values[at]) if at is not None else family
    forward = _FORWARDS.get(values[fields[genl.DEST_FWD]] & 0x7)
    if af is None or forward is None:
        return None
    raw = values[fields[genl.DEST_ADDR]]
    if len(raw) < (4 if af is Family.INET else 16):
        return None  # an address too short for the family this reply names
    weight = values[fields[genl.DEST_WEIGHT]]
    upper, lower, active, inactive, persist = (
        values[at] if at >= 0 else 0 for at in layout.optional
    )
    stats = Stats._make(layout.stats(values)) if layout.stats else Stats()
    return Dest(
        address=IPv4Address(raw[:4]) if af is Family.INET else IPv6Address(raw[:16]),
        port=socket.ntohs(values[fields[genl.DEST_PORT]]),
        forward=forward,
        weight=weight - (1 << 32) if weight >= 1 << 31 else weight,
        upper=upper,
        lower=lower,
        counters=DestCounters(active, inactive, persist, stats),
    )


class _Builder:
    def __init__(self) -> None:
        self.format = ["="]
        self.count = 0
        self.headers: list[int] = []
        self.expected: list[int] = []

    def header(self, size: int, kind: int) -> None:
        self.format.append("HH")
        self.headers += (self.count, self.count + 1)
        self.expected += (size, kind)
        self.count += 2

    def number(self, size: int) -> int | None:
        """The index of a native unsigned number of ``size`` bytes; None for another size."""
        code = _VALUE.get(size)
        if code is None:
            return None
        self.format.append(code)
        self.count += 1
        return self.count - 1

    def raw(self, size: int) -> int:
        self.format.append(f"{size}s")
        self.count += 1
        return self.count - 1

    def pad(self, size: int) -> None:
        if size % 4:
            self.format.append(f"{-size % 4}x")


def _attrs(view: memoryview, start: int, end: int) -> list[tuple[int, int, int]] | None:
    """(offset, length, type) of each attribute in ``view[start:end]``, which they must fill."""
    out = []
    while start < end:
        if start + 4 > end:
            return None
        size, kind = struct.unpack_from("=HH", view, start)
        if size < 4 or start + size > end:
            return None
        out.append((start, size, kind))
        start += (size + 3) & ~3
    return out if start == end else None


def _layout(payload: memoryview) -> _Layout | None:
    b = _Builder()
    b.format.append("4x")  # the generic-netlink header
    top = _attrs(payload, 4, len(payload))
    if top is None:
        return None
    fields: dict[int, int] = {}
    stats: dict[int, tuple[int, ...]] = {}
    for start, size, kind in top:
        b.header(size, kind)
        if kind & 0x3FFF != genl.CMD_ATTR_DEST:
            b.raw(size - 4)
            b.pad(size)
            continue
        inner = _attrs(payload, start + 4, start + size)
        if inner is None or fields:
            return None  # not a walkable nest, or a second destination in one reply
        for at, length, what in inner:
            b.header(length, what)
            kind = what & 0x3FFF
            if kind in fields or kind in stats:
                return None  # listed twice: the walk's "last one wins" is not worth a layout
            if kind in _STATS_KINDS:
                counters = _counters(b, payload, at, length)
                if counters is None:
                    return None
                stats[kind] = counters
            elif kind in _NUMBERS:
                index = b.number(length - 4)
                if index is None:
                    return None
                fields[kind] = index
            elif kind == genl.DEST_ADDR:
                fields[kind] = b.raw(length - 4)
            else:
                b.raw(length - 4)
            b.pad(length)
        b.pad(size)
    found = next((stats[k] for k in _STATS_KINDS if k in stats), None)
    unpack = struct.Struct("".join(b.format))
    if unpack.size != len(payload) or not fields.keys() >= _REQUIRED:
        return None
    optional = tuple(fields.get(kind, -1) for kind in _OPTIONAL)
    picks = itemgetter(*found) if found else None
    return _Layout(unpack, itemgetter(*b.headers), tuple(b.expected), fields, optional, picks)


def _counters(b: _Builder, payload: memoryview, start: int, size: int) -> tuple[int, ...] | None:
    """The indexes of a stats nest's ten counters (every one must be there, once)."""
    inner = _attrs(payload, start + 4, start + size)
    if inner is None:
        return None
    found: dict[int, int] = {}
    for _, length, what in inner:
        b.header(length, what)
        kind = what & 0x3FFF
        if not 1 <= kind <= 10:
            b.raw(length - 4)  # padding (IPVS_STATS_ATTR_PAD) or a newer counter: not read
            b.pad(length)
            continue
        index = b.number(length - 4) if length - 4 in (4, 8) else None
        if index is None or kind in found:
            return None
        found[kind] = index
    if not all(k in found for k in range(1, 11)):
        return None  # a counter missing: the walk reads it as 0, not worth a layout
    return tuple(found[k] for k in range(1, 11))
