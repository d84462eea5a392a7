"""directives: the one table of directive names agrees with the reference and with the parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ldirector.config import ConfigError
from ldirector.config.directives import DIRECTIVES, Scope
from tests.unit.config.cfgtools import load_text

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = (ROOT / "docs" / "config-reference.md").read_text()


def test_every_directive_is_documented_with_a_heading() -> None:
    headings = set(re.findall(r"^### (\S+)$", REFERENCE, re.MULTILINE))
    missing = sorted(set(DIRECTIVES) - headings)
    assert not missing, f"docs/config-reference.md lacks: {missing}"
    unknown = sorted(headings - set(DIRECTIVES))
    assert not unknown, f"documented but unknown to the parser: {unknown}"


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
