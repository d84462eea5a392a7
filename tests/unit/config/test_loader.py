"""loader: files in, a Config or every diagnostic out, and nothing else, whatever the input.

The table of error fixtures lives in testdata/errors/NAME.cf: a header line reads
``# expect: LINE: SEVERITY: MESSAGE`` and the load must report exactly those diagnostics (no
fewer, no others), with their exact lines. Then the files no config should be: directories,
FIFOs, sockets, binaries, huge ones.
"""

from __future__ import annotations

import os
import re
import socket
import time
from ipaddress import ip_address
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ldirector.config.loader as loader_module
from ldirector.config import ConfigError, Severity, find_config, load
from ldirector.config.directives import DIRECTIVES
from tests.unit.config.cfgtools import (
    TESTDATA,
    fake_resolver,
    load_fixture,
    load_text,
    no_mysql_driver,
)

ROOT = Path(__file__).resolve().parents[3]
ERRORS = sorted((TESTDATA / "errors").glob("*.cf"))
VALID = [p.read_bytes() for p in sorted((TESTDATA / "valid").glob("*.cf"))]
WORDS = [
    *DIRECTIVES,
    *("=", " ", "\t", "\n", '"', "#", ":", "->", "[", "]", "::1", "127.0.0.1", "gate", "masq"),
    *("ipip", "yes", "no", "80", "0", "65536", "l:", "u:", ",", "\r\n", "\\n"),
]
CONTROL = ["", "\r", "\x00", "\x0b", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029", "\ufeff"]
#: Numbers too big for any field, signed, fractional, or written in other scripts' digits.
NUMBERS = [
    *("9" * 30, "9" * 5000, "0" * 40 + "1", "-1", "4294967296", "65536", "2147483648", "1e9"),
    *("\u0663", "\u0668\u0660", "\uff11\uff12", "\u00b2", "\u0967\u0968\u096d.0.0.1", "1.5"),
]
PUNCTUATION = ["[::1]", "[", "]", "<", ">", "@", '"', ",", "->", "=", "#", "\\", "Ops <", "a:b:c"]
#: What a typo, a paste or a hostile file puts into a value.
HOSTILE = [*CONTROL, *NUMBERS, *PUNCTUATION]
_TOKEN = re.compile(r"[ \t]+|\n|->|[=:,\"\[\]#<>@]|[^ \t\n=:,\"\[\]#<>@-]+|-")


def expected(path: Path) -> list[str]:
    lines = []
    for raw in path.read_bytes().splitlines():
        if raw.startswith(b"# expect: "):
            lines.append(f"{path}:{raw[len(b'# expect: ') :].decode()}")
    return lines


def actual(path: Path) -> tuple[list[str], bool]:
    try:
        config = load_fixture(path, no_mysql_driver)
    except ConfigError as exc:
        return [str(d) for d in exc.diagnostics], True
    return [str(d) for d in config.warnings], False


def test_there_are_many_fixtures() -> None:
    assert len(ERRORS) > 100


@pytest.mark.parametrize("path", ERRORS, ids=lambda p: p.stem)
def test_fixture_reports_exactly_its_diagnostics(path: Path) -> None:
    want = expected(path)
    got, failed = actual(path)
    assert want, f"{path.name} has no '# expect:' header"
    assert sorted(got) == sorted(want)
    assert failed == any(": error: " in line for line in want)


def test_every_diagnostic_has_its_own_line_and_severity() -> None:
    err = None
    try:
        load_fixture(TESTDATA / "errors" / "many-errors.cf", no_mysql_driver)
    except ConfigError as exc:
        err = exc
    assert err is not None
    assert [d.span.line for d in err.errors] == [6, 8, 9, 11, 12]
    assert all(d.severity is Severity.ERROR for d in err.errors)
    assert str(err).count("\n") == 4


def test_valid_fixtures_still_load() -> None:
    for path in sorted((TESTDATA / "valid").glob("*.cf")):
        assert load_fixture(path).virtuals


def test_example_config_loads_and_uses_only_loopback() -> None:
    config = load(ROOT / "examples" / "ldirectord.cf", resolver=fake_resolver)
    assert len(config.virtuals) >= 3
    assert not config.warnings
    for virtual in config.virtuals:
        assert virtual.address is not None and virtual.address.is_loopback
        for real in virtual.reals:
            assert real.address.is_loopback
            assert real.target.address.is_loopback
        if virtual.fallback is not None:
            assert virtual.fallback.address.is_loopback
    literals = re.findall(
        r"\b\d+\.\d+\.\d+\.\d+\b", (ROOT / "examples" / "ldirectord.cf").read_text()
    )
    assert all(ip_address(a).is_loopback or a.startswith("255.") for a in literals)


def test_differences_page_names_the_fixed_misreadings() -> None:
    text = (ROOT / "docs" / "differences.md").read_text()
    needles = ("[2-4]", "firewall mark 192", "inferred from the port", ".8->.11", "blank line")
    for needle in (*needles, "CRLF"):
        assert needle in text


def _loads_or_config_error(data: bytes) -> None:
    try:
        config = load_text(data)
    except ConfigError as exc:
        assert exc.errors, "ConfigError without an error"
        diagnostics = exc.diagnostics
    else:
        diagnostics = config.warnings
    for d in diagnostics:
        assert "\n" not in d.message
        assert "internal error" not in d.message, d  # the last-resort guard hides a bug


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


def test_tokens_rebuild_every_valid_config() -> None:
    for base in VALID:
        text = base.decode()
        assert "".join(_TOKEN.findall(text)) == text


@st.composite
def token_mutants(draw: st.DrawFn) -> str:
    """A valid config with a few tokens inserted, deleted or replaced, a value emptied, or a
    number swapped for a huge, signed or non-ASCII one."""
    tokens = _TOKEN.findall(draw(st.sampled_from(VALID)).decode())
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(tokens) - 1))
        word = draw(st.sampled_from(HOSTILE + WORDS))
        match draw(st.sampled_from(["insert", "delete", "replace", "empty", "number"])):
            case "insert":
                tokens.insert(at, word)
            case "delete" if len(tokens) > 1:
                del tokens[at]
            case "replace":
                tokens[at] = word
            case "empty":
                equals = [i for i, t in enumerate(tokens) if t == "="]
                if equals:
                    start = draw(st.sampled_from(equals)) + 1
                    end = tokens.index("\n", start) if "\n" in tokens[start:] else len(tokens)
                    del tokens[start:end]
            case "number":
                numbers = [i for i, t in enumerate(tokens) if t.isascii() and t.isdigit()]
                if numbers:
                    tokens[draw(st.sampled_from(numbers))] = draw(st.sampled_from(NUMBERS))
    return "".join(tokens)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(token_mutants())
def test_token_mutations_of_valid_configs(text: str) -> None:
    _loads_or_config_error(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("name", sorted(DIRECTIVES))
def test_every_hostile_value_of_every_directive(name: str) -> None:
    for value in HOSTILE:
        _loads_or_config_error(f"{name}={value}\n".encode())
        _loads_or_config_error(f"virtual=127.0.0.1:80\n\t{name} = {value}\n".encode())


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
    path = tmp_path / "sock.cf"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        with pytest.raises(ConfigError, match="cannot read config file"):
            load(path)


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / "fifo.cf"
    os.mkfifo(path)
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(info.value) == f"{path}: error: is not a regular file"


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


def test_a_bug_outside_every_line_guard_is_still_a_diagnostic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(data: bytes, file: str) -> None:
        raise RuntimeError("lexer bug")

    monkeypatch.setattr(loader_module, "lex", broken)
    with pytest.raises(ConfigError) as info:
        load_text("virtual=127.0.0.1:80\n")
    assert str(info.value) == "test.cf: error: internal error while reading the config: " + (
        "RuntimeError: lexer bug"
    )
