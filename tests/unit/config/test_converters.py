"""converters: the directives whose values have a small grammar of their own."""

from __future__ import annotations

import pytest

from checks.types import HttpSpec
from ldirector.config import CheckType, ConfigError, Invalid, loads
from ldirector.config.converters import (
    checktype_value,
    compile_receive,
    fallbackcommand_value,
    netmask_value,
    sysctl_value,
)
from ldirector.config.render import config_json
from tests.unit.config.cfgtools import load_text

BODY = "virtual=127.0.0.100:80\n\treal=127.0.0.2:80 masq\n"


# --- httpstatus ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected", "shown"),
    [
        ("9555", ("127.0.0.1", 9555), "127.0.0.1:9555"),
        ("127.0.0.1:9555", ("127.0.0.1", 9555), "127.0.0.1:9555"),
        ("0.0.0.0:80", ("0.0.0.0", 80), "0.0.0.0:80"),
        ("[::1]:9555", ("::1", 9555), "[::1]:9555"),
        ('"127.0.0.5:1"', ("127.0.0.5", 1), "127.0.0.5:1"),
    ],
)
def test_valid_forms(value: str, expected: tuple[str, int], shown: str) -> None:
    config = loads(f"httpstatus = {value}\n{BODY}", "l.cf")
    assert config.httpstatus == expected
    global_json = config_json(config)["global"]
    assert isinstance(global_json, dict) and global_json["httpstatus"] == shown


def test_off_by_default() -> None:
    assert loads(BODY, "l.cf").httpstatus is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("localhost:9555", "an IP address is required"),
        ("127.0.0.1", "a port 1..65535 is required"),
        ("127.0.0.1:0", "a port 1..65535 is required"),
        ("70000", "a port 1..65535 is required"),
        ("[::1]", "a port 1..65535 is required"),
        ("", "a port 1..65535 is required"),
    ],
)
def test_errors_name_the_line(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        loads(f"checkinterval=5\nhttpstatus = {value}\n{BODY}", "l.cf")
    (diagnostic,) = info.value.diagnostics
    text = str(diagnostic)
    assert text.startswith("l.cf:2: error: ") and message in text
    assert "\n" not in text


def test_only_in_the_global_section() -> None:
    with pytest.raises(ConfigError, match="httpstatus"):
        loads(f"{BODY}\thttpstatus = 9555\n", "l.cf")


# --- receive ---------------------------------------------------------------------------------


def test_receive_with_nested_set_loads_without_warning() -> None:
    """Python's FutureWarning for "[[" sets must not escape the loader (found by fuzzing)."""
    config = load_text('virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\treceive="[[a]x"\n')
    spec = config.virtuals[0].reals[0].negotiate
    assert isinstance(spec, HttpSpec)
    assert spec.receive is not None
    assert spec.receive.search("[x")


def test_receive_that_is_no_regular_expression() -> None:
    with pytest.raises(Invalid, match=r"^invalid receive string: not a regular expression"):
        compile_receive("(")


# --- fallbackcommand -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "glob", "words"),
    [
        ('"/usr/local/bin/down"', True, ("/usr/local/bin/down",)),
        ('"/usr/local/bin/down"', False, ("/usr/local/bin/down",)),
        ("/bin/down --why 'no real'", True, ("/bin/down", "--why", "no real")),
        ("\"/bin/down 'a b'\"", False, ("/bin/down", "a b")),
        ('/bin/down "a b"', False, ("/bin/down", "a b")),
    ],
)
def test_fallbackcommand_words(value: str, glob: bool, words: tuple[str, ...]) -> None:
    assert fallbackcommand_value(value, glob) == words


@pytest.mark.parametrize(("value", "glob"), [('""', True), ('""', False), ("''", True)])
def test_fallbackcommand_empty(value: str, glob: bool) -> None:
    with pytest.raises(Invalid, match=r"^invalid fallback command$"):
        fallbackcommand_value(value, glob)


def test_fallbackcommand_that_cannot_be_split_is_an_error_at_load_not_at_run_time() -> None:
    with pytest.raises(ConfigError) as info:
        load_text(f"{BODY}\tfallbackcommand=/bin/down it's\n")
    (only,) = info.value.diagnostics
    assert only.span.line == 3
    assert only.message == 'invalid fallback command "/bin/down it\'s": No closing quotation'


# --- numbers ---------------------------------------------------------------------------------


def test_checktype_numbers() -> None:
    assert checktype_value("3") == (CheckType.COMBINED, 3)
    assert checktype_value("0") == (CheckType.NEGOTIATE, 0)
    with pytest.raises(Invalid, match=r"N is at most 2147483647"):
        checktype_value("9" * 5000)


def test_netmask_prefix_numbers() -> None:
    assert netmask_value("64", 6) == 64
    for text in ("0", "129", "9" * 5000, "\u0666\u0664"):
        with pytest.raises(Invalid, match=r"prefix length between 1 and 128"):
            netmask_value(text, 6)


@pytest.mark.parametrize(
    ("value", "result"),
    [("conntrack yes", ("conntrack", 1)), ("est_nice -20", ("est_nice", -20))],
)
def test_sysctl_numbers(value: str, result: tuple[str, int]) -> None:
    assert sysctl_value(value) == result


@pytest.mark.parametrize("number", ["-21", "9" * 5000, "-" + "9" * 5000, "-", "\u0661", "1.0"])
def test_sysctl_numbers_out_of_range(number: str) -> None:
    with pytest.raises(Invalid, match=r"for IPVS sysctl est_nice: expected -20\.\.19$"):
        sysctl_value(f"est_nice {number}")
