"""No input, however malformed, makes the loader raise anything but ConfigError.

Property-based fuzzing with hypothesis over junk bytes and over mutations of valid configs, plus
the named nasty cases: huge lines, binary files, directories, unreadable files, 100,000 virtuals.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cfgtools import TESTDATA, fake_resolver, load_fixture, load_text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checks.types import HttpSpec
from ldirector.config import ConfigError, find_config, load
from ldirector.config.directives import DIRECTIVES
from ldirector.config.values import Invalid, system_resolver

VALID = [p.read_bytes() for p in sorted((TESTDATA / "valid").glob("*.cf"))]
WORDS = [
    *DIRECTIVES,
    "=",
    " ",
    "\t",
    "\n",
    '"',
    "#",
    ":",
    "->",
    "[",
    "]",
    "::1",
    "127.0.0.1",
    "gate",
    "masq",
    "ipip",
    "yes",
    "no",
    "80",
    "0",
    "65536",
    "l:",
    "u:",
    ",",
    "\r\n",
    "\\n",
]


def _loads_or_config_error(data: bytes) -> None:
    try:
        load_text(data)
    except ConfigError as exc:
        assert exc.errors, "ConfigError without an error"
        for d in exc.diagnostics:
            assert "\n" not in d.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    _loads_or_config_error(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=80))
def test_random_directive_soup(words: list[str]) -> None:
    _loads_or_config_error("".join(words).encode())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_mutated_valid_configs(base: bytes, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(base)))
    cut = data.draw(st.integers(0, 40))
    insert = data.draw(st.text(max_size=20)).encode("utf-8", "surrogatepass")
    _loads_or_config_error(base[:at] + insert + base[at + cut :])


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=60))
def test_any_value_of_any_directive(value: str) -> None:
    for key in ("real", "virtual", "virtual6", "fallback", "checktype", "receive", "netmask"):
        body = f"{key}={value}\n" if key.startswith("virtual") else f"virtual=1\n\t{key}={value}\n"
        _loads_or_config_error(body.encode())


def test_huge_line_is_one_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_text(b"virtual=127.0.0.1:80\n\treal=" + b"9" * 100_000 + b"\n")
    assert [d.span.line for d in info.value.errors] == [2]
    assert "line too long" in info.value.errors[0].message


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "binary.cf"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(ConfigError) as info:
        load(path, resolver=fake_resolver)
    assert info.value.errors


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path)
    assert str(info.value) == f"{tmp_path}: error: is a directory, not a config file"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path / "nope.cf")
    assert str(info.value) == f"{tmp_path / 'nope.cf'}: error: config file not found"


def test_unreadable_file(tmp_path: Path) -> None:
    # Root reads any mode-0 file, so use what nobody can open: a unix socket.
    import socket

    path = tmp_path / "sock.cf"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(ConfigError, match="cannot read config file"):
            load(path)


@pytest.mark.slow
def test_hundred_thousand_virtuals() -> None:
    blocks = "".join(
        f"virtual=127.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:80\n\treal=127.255.0.1:80 gate\n"
        for i in range(100_000)
    )
    started = time.monotonic()
    config = load_text(blocks)
    assert len(config.virtuals) == 100_000
    assert time.monotonic() - started < 110  # a bound against hangs, not a speed bar


def test_all_errors_of_a_big_broken_file_are_collected() -> None:
    text = "".join(f"virtual=127.0.0.{i}\n" for i in range(1, 201))
    with pytest.raises(ConfigError) as info:
        load_text(text)
    assert [d.span.line for d in info.value.errors] == list(range(1, 201))


def test_valid_fixtures_still_load() -> None:
    for path in sorted((TESTDATA / "valid").glob("*.cf")):
        assert load_fixture(path).virtuals


def test_system_resolver_resolves_localhost_and_rejects_invalid() -> None:
    resolve = system_resolver(timeout=5.0)
    assert str(resolve("localhost", 4)) == "127.0.0.1"
    with pytest.raises(Invalid, match=r"could not resolve host 'nowhere\.invalid' \(IPv4\)"):
        resolve("nowhere.invalid", 4)


def test_system_resolver_is_used_by_default(tmp_path: Path) -> None:
    path = tmp_path / "names.cf"
    path.write_text("virtual=localhost:80\n\treal=localhost:8080 masq\n")
    config = load(path)
    assert str(config.virtuals[0].address) == "127.0.0.1"
    assert str(config.virtuals[0].reals[0].address) == "127.0.0.1"


def test_find_config_follows_ldirectord_lookup(tmp_path: Path) -> None:
    etc, conf = tmp_path / "ha.d", tmp_path / "ha.d" / "conf"
    conf.mkdir(parents=True)
    (conf / "only-in-conf.cf").write_text("")
    (etc / "both.cf").write_text("")
    (conf / "both.cf").write_text("")
    search = (str(etc), str(conf))
    assert find_config("both.cf", search) == etc / "both.cf"
    assert find_config("only-in-conf.cf", search) == conf / "only-in-conf.cf"
    assert find_config("elsewhere.cf", search) == Path("elsewhere.cf")
    assert find_config(None, search) == Path("ldirectord.cf")
    (etc / "ldirectord.cf").write_text("")
    assert find_config(None, search) == etc / "ldirectord.cf"


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    import os

    path = tmp_path / "fifo.cf"
    os.mkfifo(path)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == f"{path}: error: is not a regular file"


def test_receive_with_nested_set_loads_without_warning() -> None:
    """Python's FutureWarning for "[[" sets must not escape the loader (found by fuzzing)."""
    config = load_text('virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\treceive="[[a]x"\n')
    spec = config.virtuals[0].reals[0].negotiate
    assert isinstance(spec, HttpSpec)
    assert spec.receive is not None
    assert spec.receive.search("[x")
