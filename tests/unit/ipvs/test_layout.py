"""Destination replies read by a learned layout agree with the attribute walk, or defer to it."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from ldirector.ipvs import decode, genl
from ldirector.ipvs.layout import MAX_LAYOUTS, Layouts
from ldirector.ipvs.types import Dest, Family, ForeignDest

from .wire import kernel_dest_attrs, kernel_dest_reply, payload, u32


def learned(reply: bytes, family: Family = Family.INET) -> Layouts:
    layouts = Layouts()
    walked = decode.walk_dest(payload(reply), family)
    assert isinstance(walked, Dest)
    layouts.learn(payload(reply), family, walked)
    return layouts


def same(a: Dest | ForeignDest | None, b: Dest | ForeignDest) -> bool:
    if not isinstance(a, Dest) or not isinstance(b, Dest):
        return False
    return a == b and a.counters == b.counters


def test_a_learned_layout_reads_another_real_exactly_as_the_walk_does() -> None:
    layouts = learned(kernel_dest_reply(kernel_dest_attrs("127.0.20.1")))
    other = payload(kernel_dest_reply(kernel_dest_attrs("127.0.20.9", 8080, 7, 3), base=5000))
    fast = layouts.read(other, Family.INET)
    assert same(fast, decode.walk_dest(other, Family.INET))
    assert fast is not None and fast.port == 8080 and fast.weight == 7
    assert fast.counters is not None
    assert (fast.counters.active_conns, fast.counters.inactive_conns) == (3, 6)
    assert fast.counters.stats.conns == 5001 and fast.counters.stats.out_bps == 5010


def test_ipv6_reals_and_negative_weights_read_the_same() -> None:
    layouts = learned(kernel_dest_reply(kernel_dest_attrs("::1")), Family.INET6)
    other = payload(kernel_dest_reply(kernel_dest_attrs("fd00::7", 443, -1)))
    assert same(layouts.read(other, Family.INET6), decode.walk_dest(other, Family.INET6))


def test_a_reply_of_another_shape_is_left_to_the_walk() -> None:
    layouts = learned(kernel_dest_reply(kernel_dest_attrs()))
    attrs = kernel_dest_attrs()
    # Same size, two attributes swapped: the headers differ, so the layout must not apply.
    attrs[2], attrs[3] = attrs[3], attrs[2]
    assert layouts.read(payload(kernel_dest_reply(attrs)), Family.INET) is None
    # A forwarding method ldirector does not know: the walk makes it a ForeignDest.
    odd = kernel_dest_attrs()
    odd[2] = (genl.DEST_FWD, u32(6))
    assert layouts.read(payload(kernel_dest_reply(odd)), Family.INET) is None
    assert isinstance(decode.dest(payload(kernel_dest_reply(odd)), Family.INET), ForeignDest)


def test_a_family_too_wide_for_the_address_is_left_to_the_walk() -> None:
    layouts = learned(kernel_dest_reply(kernel_dest_attrs()))
    attrs = kernel_dest_attrs()
    attrs[-1] = (genl.DEST_AF, struct.pack("=H", 99))
    assert layouts.read(payload(kernel_dest_reply(attrs)), Family.INET) is None


def test_replies_without_counters_or_with_odd_ones_learn_no_layout() -> None:
    no_stats = [a for a in kernel_dest_attrs() if a[0] not in (genl.DEST_STATS, genl.DEST_STATS64)]
    layouts = learned(kernel_dest_reply(no_stats))
    again = payload(kernel_dest_reply(no_stats))
    assert same(layouts.read(again, Family.INET), decode.walk_dest(again, Family.INET))
    odd = kernel_dest_attrs()
    odd[12] = (genl.DEST_STATS | 0x8000, genl.nla(1, b"\1\2\3"))  # a 3-byte counter
    odd = [a for a in odd if a[0] != genl.DEST_STATS64]
    layouts = learned(kernel_dest_reply(odd))
    assert layouts.read(payload(kernel_dest_reply(odd)), Family.INET) is None


def test_only_a_few_sizes_are_remembered() -> None:
    layouts = Layouts()
    for extra in range(MAX_LAYOUTS + 3):
        attrs = [*kernel_dest_attrs(), (40, bytes(4 * (extra + 1)))]
        reply = payload(kernel_dest_reply(attrs))
        walked = decode.walk_dest(reply, Family.INET)
        assert isinstance(walked, Dest)
        layouts.learn(reply, Family.INET, walked)
        hit = layouts.read(reply, Family.INET)
        assert (hit is not None) == (extra < MAX_LAYOUTS)


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """A kernel-shaped reply with some attributes' types, sizes or values changed."""
    attrs = kernel_dest_attrs(
        draw(st.sampled_from(["127.0.20.1", "10.1.2.3", "::1"])),
        draw(st.integers(0, 65535)),
        draw(st.integers(-(2**31), 2**31 - 1)),
        draw(st.integers(0, 2**31 - 1)),
    )
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(attrs) - 1))
        kind, value = attrs[i]
        choice = draw(st.integers(0, 2))
        if choice == 0:
            kind = draw(st.integers(0, 20)) | draw(st.sampled_from([0, 0x8000, 0x4000]))
        elif choice == 1:
            value = draw(st.binary(max_size=24))
        else:
            value = draw(st.binary(min_size=len(value), max_size=len(value)))
        attrs[i] = (kind, value)
    return kernel_dest_reply(attrs, base=draw(st.integers(0, 2**32 - 11)))


@settings(max_examples=400)
@given(mangled())
def test_a_learned_layout_never_disagrees_with_the_walk(reply: bytes) -> None:
    layouts = learned(kernel_dest_reply(kernel_dest_attrs()))
    for family in (Family.INET, Family.INET6):
        fast = layouts.read(payload(reply), family)
        if fast is not None:
            assert same(fast, decode.walk_dest(payload(reply), family))


def test_padding_inside_the_counters_is_read_past() -> None:
    """Kernels on CPUs without unaligned access pad each 64-bit counter with an empty
    IPVS_STATS_ATTR_PAD attribute."""
    padded = b"".join(
        genl.nla(11, b"") + genl.nla(i, struct.pack("=Q", 7000 + i)) for i in range(1, 11)
    )
    attrs = kernel_dest_attrs()
    attrs[13] = (genl.DEST_STATS64 | 0x8000, padded)
    layouts = learned(kernel_dest_reply(attrs))
    again = payload(kernel_dest_reply(attrs))
    fast = layouts.read(again, Family.INET)
    assert same(fast, decode.walk_dest(again, Family.INET))
    assert fast is not None and fast.counters is not None
    assert fast.counters.stats.conns == 7001
