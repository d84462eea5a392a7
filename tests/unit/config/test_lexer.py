"""lexer: what a line may hold. Control characters never reach a value; tabs and CRLF do no harm."""

from __future__ import annotations

import pytest

from ldirector.config import ConfigError, Severity
from ldirector.config.lexer import lex
from tests.unit.config.cfgtools import load_text

REAL = "virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n"


def test_huge_line_is_one_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_text(b"virtual=127.0.0.1:80\n\treal=" + b"9" * 100_000 + b"\n")
    assert [d.span.line for d in info.value.errors] == [2]
    assert "line too long" in info.value.errors[0].message


@pytest.mark.parametrize(
    "char",
    [
        "\r",
        "\x01",
        "\x0b",
        "\x0c",
        "\x1b",
        "\x1f",
        "\x7f",
        "\x80",
        "\x85",
        "\x9f",
        "\u2028",
        "\u2029",
    ],
)
def test_a_control_character_in_a_value_is_an_error_at_its_line(char: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(f"{REAL}\tvirtualhost=www{char}.example.test\n")
    (only,) = info.value.diagnostics
    assert (only.span.line, only.severity) == (3, Severity.ERROR)
    assert only.message == (
        f"control character U+{ord(char):04X} in column 17: only tab may appear inside a line"
    )


def test_cr_inside_virtualhost_no_longer_passes() -> None:
    """A CR kept in the Host header made every HTTP check of the virtual fail."""
    with pytest.raises(ConfigError, match=r"test\.cf:3: error: control character U\+000D"):
        load_text(f'{REAL}\tvirtualhost="www.example.test\r"\n')


def test_tabs_separate_and_crlf_ends_lines() -> None:
    lines, diags = lex(b"virtual=127.0.0.1:80\r\n\treal=127.0.0.2:80\tgate\t2\r\n", "t.cf")
    assert not diags
    assert [(line.key, line.value) for line in lines] == [
        ("virtual", "127.0.0.1:80"),
        ("real", "127.0.0.2:80\tgate\t2"),
    ]


def test_control_characters_in_comments_are_ignored() -> None:
    lines, diags = lex(b"# \x1b[31m red \r comment\nquiescent=yes # bell \x07\n", "t.cf")
    assert not diags
    assert [(line.key, line.value) for line in lines] == [("quiescent", "yes")]


def test_a_cr_before_the_line_feed_only() -> None:
    _, diags = lex(b"quiescent=yes\r\r\n", "t.cf")
    assert [str(d) for d in diags] == [
        "t.cf:1: error: control character U+000D in column 14: only tab may appear inside a line"
    ]
