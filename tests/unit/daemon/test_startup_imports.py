"""Start-up cost: what the daemon imports before its first check.

aiohttp alone was half of the daemon's import time (its client builds TLS contexts as it
loads); only the status endpoint and http_proxy checks need it, so they import it when used.
jinja2 renders alert mails, which most directors never send: it loads at the first one.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO


def test_the_daemon_and_the_http_check_load_without_aiohttp_or_jinja2() -> None:
    probe = (
        "import sys, ldirector.daemon.service, ldirector.daemon.runner, checks.http;"
        "print(sorted({'aiohttp', 'jinja2'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.strip() == "[]"
