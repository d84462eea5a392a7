"""The httpstatus directive: where the status page listens, or a FILE:LINE error."""

from __future__ import annotations

import pytest

from ldirector.config import ConfigError, loads
from ldirector.config.render import config_json

BODY = "virtual=127.0.0.100:80\n\treal=127.0.0.2:80 masq\n"


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
