"""parser: one diagnostic per bad line, never an exception, and the limits of one config."""

from __future__ import annotations

import pytest

import ldirector.config.addresses as addresses_module
import ldirector.config.parser as parser_module
from ldirector.config import ConfigError, Severity
from ldirector.config.parser import MAX_REALS
from ldirector.ipvs import types as ipvs_types
from tests.unit.config.cfgtools import load_text


def test_scheduler_names_are_the_ipvs_layer_ones() -> None:
    assert vars(parser_module)["SCHEDULERS"] is ipvs_types.SCHEDULERS  # one definition
    for name in sorted(ipvs_types.SCHEDULERS):
        config = load_text(f"virtual=127.0.0.1:80\n\tscheduler={name}\n")
        assert config.virtuals[0].scheduler == name
        assert not config.warnings


def test_empty_schedflags_is_an_error_at_its_line() -> None:
    """``schedflags =`` with nothing after it crashed the loader with an IndexError."""
    with pytest.raises(ConfigError) as info:
        load_text("virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\tschedflags =\n")
    (only,) = info.value.diagnostics
    assert (only.span.line, only.severity) == (3, Severity.ERROR)
    assert only.message == "schedflags needs a value: schedflags = FLAG[,FLAG...]"


def test_a_bug_in_a_directive_handler_is_an_error_at_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(value: str) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(parser_module, "checktype_value", broken)
    with pytest.raises(ConfigError) as info:
        load_text("virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\tchecktype=connect\n")
    (only,) = info.value.diagnostics
    assert (only.span.line, only.severity) == (3, Severity.ERROR)
    assert only.message == (
        "internal error while reading checktype: IndexError: list index out of range"
    )


def test_a_bug_in_a_virtual_line_is_an_error_at_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(addresses_module, "parse_virtual", broken)
    with pytest.raises(ConfigError) as info:
        load_text("quiescent=no\nvirtual=127.0.0.1:80\n")
    (only,) = info.value.diagnostics
    assert (only.span.line, only.message) == (
        2,
        "internal error while reading virtual: ZeroDivisionError",
    )


def test_reals_of_a_whole_config_are_capped_at_the_line_that_crosses() -> None:
    ranges = "".join(f"\treal=10.{n}.0.0->10.{n}.255.255:80 gate\n" for n in range(8))
    with pytest.raises(ConfigError) as info:
        load_text(f"virtual=127.0.0.1:80\n{ranges}virtual=127.0.0.2:80\n{ranges}")
    (only,) = info.value.diagnostics
    # Two /16 ranges are 131,072 reals: the second line crosses the cap, and only it is named.
    assert (only.span.line, only.severity) == (3, Severity.ERROR)
    assert only.message == (
        f"too many real servers: this line brings the config to 131072 (at most {MAX_REALS})"
    )


def test_the_cap_itself_is_allowed() -> None:
    assert MAX_REALS == 100_000
    text = "virtual=127.0.0.1:80\n\treal=10.0.0.1->10.0.255.255:80 gate\n"  # 65,535 reals
    left = MAX_REALS - 65_535
    text += (
        f"virtual=127.0.0.2:80\n\treal=10.1.0.0->10.1.{(left - 1) >> 8}.{(left - 1) & 255} gate\n"
    )
    config = load_text(text)
    assert sum(len(v.reals) for v in config.virtuals) == MAX_REALS
