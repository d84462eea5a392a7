"""The Debian package suite runs only in the VM `scripts/vm-test --package` boots, where /etc,
/usr and /var are throwaway overlays: it installs, replaces and purges packages."""

from __future__ import annotations

import os

import pytest

IN_PACKAGE_VM = os.environ.get("LDIRECTOR_PACKAGE_VM") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if IN_PACKAGE_VM:
        return
    skip = pytest.mark.skip(reason="installs packages: runs only inside scripts/vm-test --package")
    for item in items:
        if "tests/package/" in item.nodeid:
            item.add_marker(skip)
