"""The docs and the example stay in step with the code: every directive documented, every
service's spec type in the checks contract, examples/ldirectord.cf valid and loopback-only."""

from __future__ import annotations

import re
import typing
from ipaddress import ip_address
from pathlib import Path

import pytest
from cfgtools import fake_resolver, load_text

from checks.types import CheckSpec
from ldirector.config import SERVICES, ConfigError, Service, load
from ldirector.config.directives import DIRECTIVES, Scope
from ldirector.config.sysctls import SYSCTLS

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = (ROOT / "docs" / "config-reference.md").read_text()


def test_every_directive_is_documented_with_a_heading() -> None:
    headings = set(re.findall(r"^### (\S+)$", REFERENCE, re.MULTILINE))
    missing = sorted(set(DIRECTIVES) - headings)
    assert not missing, f"docs/config-reference.md lacks: {missing}"
    unknown = sorted(headings - set(DIRECTIVES))
    assert not unknown, f"documented but unknown to the parser: {unknown}"


def test_every_sysctl_and_service_is_named_in_the_reference() -> None:
    for name in SYSCTLS:
        assert name in REFERENCE
    for service in Service:
        assert f"{service}" in REFERENCE


def test_every_service_spec_type_is_in_the_check_contract() -> None:
    union = set(typing.get_args(CheckSpec))
    assert len(SERVICES) == 21 == len(Service)
    for service, info in SERVICES.items():
        assert info.spec_type in union, service
        assert (info.module is None) == (info.extra is None)


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
    for needle in ("[2-4]", "firewall mark 192", "B15", "B21", "blank line", "CRLF"):
        assert needle in text


@pytest.mark.parametrize("name", sorted(n for n, d in DIRECTIVES.items() if d.scope != Scope.START))
def test_every_directive_is_handled_where_its_scope_allows(name: str) -> None:
    scope = DIRECTIVES[name].scope
    texts = []
    if scope in (Scope.GLOBAL, Scope.BOTH):
        texts.append(f"{name}=x\n")
    if scope in (Scope.VIRTUAL, Scope.BOTH):
        texts.append(f"virtual=127.0.0.1:80\n\t{name}=x\n")
    for text in texts:
        try:
            messages = [d.message for d in load_text(text).warnings]
        except ConfigError as exc:
            messages = [d.message for d in exc.diagnostics]
        assert not [m for m in messages if "only valid" in m or "unknown directive" in m]
