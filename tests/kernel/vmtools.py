"""Helpers for kernel tests: running the host tools the VM shares (ipvsadm, ip, setpriv)."""

from __future__ import annotations

import subprocess
import sys


def ipvsadm(*args: str, stdin: str | None = None) -> str:
    """Run ipvsadm, failing the test with its stderr if it fails."""
    done = subprocess.run(
        ["ipvsadm", *args], input=stdin, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, f"ipvsadm {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


def run_as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a Python snippet or module as user nobody with no capabilities at all."""
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            *argv,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
