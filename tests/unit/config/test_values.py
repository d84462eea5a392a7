"""values: numbers are ASCII digits only, bounded before conversion; the system resolver."""

from __future__ import annotations

import pytest

from ldirector.config import Invalid, parse_fwmark, parse_port
from ldirector.config.names import port, system_resolver
from ldirector.config.values import Lenient, decimal, integer

#: Digits ``int()`` reads that no config or command line means as a number.
UNICODE_DIGITS = ["\u0663", "\u0668\u0660", "\uff18\uff10", "\u00b2", "\u0967", "\U0001d7ce"]


def test_system_resolver_resolves_localhost_and_rejects_invalid() -> None:
    resolve = system_resolver(timeout=5.0)
    assert str(resolve("localhost", 4)) == "127.0.0.1"
    with pytest.raises(Invalid, match=r"could not resolve host 'nowhere\.invalid' \(IPv4\)"):
        resolve("nowhere.invalid", 4)


@pytest.mark.parametrize(
    ("text", "low", "high", "value"),
    [
        ("0", 0, 10, 0),
        ("010", 0, 10, 10),
        ("0" * 5000 + "7", 0, 10, 7),
        ("11", 0, 10, None),
        ("9" * 5000, 0, 10, None),
        ("", 0, 10, None),
        ("-1", -5, 10, None),
        (" 1", 0, 10, None),
        ("1_0", 0, 100, None),
        *((digit, 0, 10**9, None) for digit in UNICODE_DIGITS),
    ],
)
def test_decimal(text: str, low: int, high: int, value: int | None) -> None:
    assert decimal(text, low, high) == value


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("80", 80), ("65535", 65535)])
def test_parse_port(text: str, value: int) -> None:
    assert parse_port(text) == value


@pytest.mark.parametrize("text", ["0", "65536", "", "http", "-1", "8 0", *UNICODE_DIGITS])
def test_parse_port_refuses(text: str) -> None:
    with pytest.raises(Invalid, match=r"expected a number 1\.\.65535"):
        parse_port(text)


def test_parse_port_zero_where_it_means_any() -> None:
    assert parse_port("0", minimum=0) == 0


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("4294967295", 2**32 - 1)])
def test_parse_fwmark(text: str, value: int) -> None:
    assert parse_fwmark(text) == value


@pytest.mark.parametrize("text", ["0", "4294967296", "9" * 5000, "0x10", *UNICODE_DIGITS])
def test_parse_fwmark_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=r"marks are 1\.\.4294967295") as info:
        parse_fwmark(text)
    assert len(str(info.value)) < 120


def test_integer_reads_ascii_digits_only() -> None:
    assert integer("12", "bad") == 12
    with pytest.raises(Lenient) as lenient:
        integer("abc7", "bad")
    assert lenient.value.value == 7
    for text in UNICODE_DIGITS:
        with pytest.raises(Invalid, match=r"^bad: "):
            integer(text, "bad")


def test_integer_too_large_is_invalid_not_a_crash() -> None:
    with pytest.raises(Invalid, match=r"^bad: 9{57}\.\.\. is not in 1\.\.2147483647$"):
        integer("9" * 5000, "bad")
    with pytest.raises(Invalid, match=r"^bad: 'x9{56}\.\.\.'$"):
        integer("x" + "9" * 5000, "bad")


def test_port_words_and_numbers() -> None:
    assert port("http", "tcp", "x") == 80
    assert port("0", None, "x") == 0
    with pytest.raises(Invalid, match=r"ports are 0\.\.65535"):
        port("9" * 5000, None, "real server")
