"""addresses: numbers in virtual=, real= and fallback= lines are ASCII and bounded."""

from __future__ import annotations

import pytest

from ldirector.config import Invalid
from ldirector.config.addresses import MAX_RANGE, parse_real, parse_virtual
from tests.unit.config.cfgtools import fake_resolver


def test_firewall_marks() -> None:
    assert parse_virtual("4294967295", 4, fake_resolver).fwmark == 2**32 - 1
    for text in ("0", "4294967296", "9" * 5000):
        with pytest.raises(Invalid, match=r"^invalid firewall mark .*: marks are 1\.\.4294967295$"):
            parse_virtual(text, 4, fake_resolver)


@pytest.mark.parametrize("value", ["\u0661\u0660\u0660", "127.0.0.1:\u0668\u0660", "\u00b9"])
def test_virtual_with_non_ascii_digits(value: str) -> None:
    with pytest.raises(Invalid, match=r"^invalid address for virtual service"):
        parse_virtual(value, 4, fake_resolver)


def test_weights_and_thresholds() -> None:
    real = parse_real("127.0.0.2:80 gate 2147483647 l:0 u:4294967295", 4, fake_resolver)
    assert (real.weight, real.lower, real.upper) == (2**31 - 1, 0, 2**32 - 1)
    with pytest.raises(Invalid, match=r"^invalid weight 2147483648: at most 2147483647$"):
        parse_real("127.0.0.2:80 gate 2147483648", 4, fake_resolver)
    with pytest.raises(Invalid, match=r"^invalid weight 9{57}\.\.\.: at most 2147483647$"):
        parse_real("127.0.0.2:80 gate " + "9" * 5000, 4, fake_resolver)
    with pytest.raises(Invalid, match=r"^invalid threshold 'u:9{55}\.\.\.'"):
        parse_real("127.0.0.2:80 gate u:" + "9" * 5000, 4, fake_resolver)
    with pytest.raises(Invalid, match=r"^invalid threshold 'l:\u0663'"):
        parse_real("127.0.0.2:80 gate l:\u0663", 4, fake_resolver)


def test_one_range_stays_bounded() -> None:
    assert len(parse_real("10.0.0.0->10.0.255.255 gate", 4, fake_resolver).addresses) == MAX_RANGE
    with pytest.raises(Invalid, match=r"has 65537 addresses \(at most 65536\)"):
        parse_real("10.0.0.0->10.1.0.0 gate", 4, fake_resolver)
