"""Start-up cost: what the daemon imports before its first check.

aiohttp alone was half of the daemon's import time (its client builds TLS contexts as it
loads); only the status endpoint and http_proxy checks need it, so they import it when used.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO


def test_the_daemon_and_the_http_check_load_without_aiohttp() -> None:
    probe = "import sys, ldirector.daemon.service, checks.http; print('aiohttp' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.strip() == "False"
