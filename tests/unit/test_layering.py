"""The import contract that CI runs can fail: each contract, broken on purpose in a copy of the
tree, is reported broken by the same command and configuration."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

#: (file to edit, line appended, the contract name the linter must report broken)
BREAKS = [
    ("ldirector/core/health.py", "import asyncio", "the core is pure"),
    ("ldirector/core/desired.py", "import ldirector.engine.scheduler", "import downwards only"),
    ("ldirector/ipvs/types.py", "import ldirector.config.model", "import downwards only"),
    ("checks/connect.py", "import ldirector.core.health", "checks/ never imports ldirector"),
    ("ldirector/engine/writer.py", "import ldirector.testing", "never imports the test doubles"),
]


def copy_tree(dest: Path) -> None:
    for package in ("ldirector", "checks"):
        shutil.copytree(
            REPO / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")


def lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)},
        check=False,
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    copy_tree(tmp_path)
    result = lint(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout or " broken" not in result.stdout


@pytest.mark.parametrize(("path", "line", "contract"), BREAKS)
def test_a_broken_contract_fails_the_lint(
    tmp_path: Path, path: str, line: str, contract: str
) -> None:
    copy_tree(tmp_path)
    target = tmp_path / path
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken, result.stdout
