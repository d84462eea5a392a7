"""Processes that look like a running ldirectord, for the pid-file rules.

``spawn`` starts ``python DIR/ldirectord ARGS...``: the command-line shape of a real daemon
(Python running a script named ``ldirectord``), whose body only sleeps. ``impostor`` starts
things a recycled pid may turn out to be, which merely mention ldirectord.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support.sandbox import wait_until

BODY = """\
import os, signal, sys, time
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
try:
    open(f"{sys.argv[0]}.{os.getpid()}.ready", "w").close()
except OSError:  # another user's: it cannot write there
    pass
time.sleep(60)
"""
#: A Python every user may run (a virtualenv under /root is not), for another user's process.
SYSTEM_PYTHON = Path("/usr/bin/python3")


def spawn(directory: Path, *args: str, ignore_term: bool = False) -> subprocess.Popen[bytes]:
    """``python DIRECTORY/ldirectord ARGS``, of this user, once its command line shows."""
    script = _script(directory)
    extra = ["--ignore-term"] if ignore_term else []
    proc = subprocess.Popen([sys.executable, str(script), *args, *extra])
    assert wait_until(lambda: Path(f"{script}.{proc.pid}.ready").exists(), timeout=10)
    return proc


@contextlib.contextmanager
def impostor(kind: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A live process that mentions ldirectord but is not this user's ldirector; killed after.

    ``exec-a``: ``sleep`` renamed ``ldirectord`` by bash's ``exec -a`` (``args`` unused);
    ``python-c``: Python running other code with ldirectord among its arguments;
    ``other-user``: the very shape of a real daemon (Python running a script named ldirectord
    with ``args``), run as nobody; ``same-user``: that shape as this user (a daemon of the
    config ``args`` name, if that is another config).
    """
    directory = Path(tempfile.mkdtemp(prefix="ldirector-lookalike-"))
    match kind:
        case "exec-a":
            argv = ["bash", "-c", "exec -a ldirectord sleep 60"]  # sleep takes no more
            final = ["ldirectord", "60"]
        case "python-c":
            argv = final = [
                sys.executable,
                "-c",
                "import time; time.sleep(60)",
                "ldirectord",
                *args,
            ]
        case "same-user":
            argv = final = [sys.executable, str(_script(directory)), *args]
        case "other-user":
            # A directory and an interpreter that nobody may read and run.
            directory.chmod(0o755)
            final = [str(SYSTEM_PYTHON), str(_script(directory)), *args]
            argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *final]
        case _:
            raise ValueError(kind)
    proc = subprocess.Popen(argv)
    try:
        # Until then /proc shows what ran before the last exec (pytest, bash, setpriv).
        assert wait_until(lambda: _cmdline(proc.pid) == final, timeout=10)
        yield proc
        assert proc.poll() is None, "the impostor died: the test proved nothing"
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _script(directory: Path) -> Path:
    script = directory / "ldirectord"
    script.write_text(BODY)
    script.chmod(0o644)
    return script


def can_run_as_another_user() -> bool:
    return os.geteuid() == 0 and SYSTEM_PYTHON.exists()


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]
