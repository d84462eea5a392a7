"""sysctls: every kernel toggle the config accepts is named in the reference."""

from __future__ import annotations

from pathlib import Path

from ldirector.config.sysctls import SYSCTLS

ROOT = Path(__file__).resolve().parents[3]
REFERENCE = (ROOT / "docs" / "config-reference.md").read_text()


def test_every_sysctl_is_named_in_the_reference() -> None:
    for name in SYSCTLS:
        assert name in REFERENCE
