"""What ``ldirector CONFIG start`` and the other verbs import before they do their work.

Under emulation over a 9p root every module costs a handful of slow stats and opens, so the
daemon's launch-to-first-check was mostly imports: what only some configs use (email alerts,
an https CA file, a check type, the status page, ``--shadow``) is imported where it is used.
Each probe runs in a fresh interpreter: the test process has imported everything already.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

#: No email, no syslog, no httpstatus, no CA file, no typo: what a director typically runs.
CONFIG = """\
checktimeout = 3
autoreload = yes

virtual = 127.0.0.1:8080
\tservice = http
\tchecktype = negotiate
\trequest = "/health"
\treceive = "ok"
\treal = 127.0.0.2:8080 masq
\tfallback = 127.0.0.1:8081 masq

virtual = 127.0.0.1:7000
\tchecktype = connect
\treal = 127.0.0.2:7000 masq
"""

#: The start path up to the first check: the command line, the config load, the log's
#: destination, the runner and the engine's service on the netlink backend, the alerter it
#: builds and the state files the first reconcile writes. Prints every module then loaded.
START = """
import sys
from pathlib import Path

from ldirector.cli import lifecycle, main

settings = lifecycle.load_settings(Path(sys.argv[1]))
import ldirector.daemon.runner, ldirector.daemon.service, ldirector.ipvs.netlink
from ldirector.daemon import logs

logs.destination_for(settings.logfile, debug=False, supervised=False)
from ldirector.daemon.alerts import Alerter
from ldirector.state.atomicfile import replace_file

Alerter()
replace_file(Path(sys.argv[2]) / "ldirectord.cf.owned", "tcp:127.0.0.1:8080\\n")
print("\\n".join(sorted(sys.modules)))
"""

#: A verb that never runs the daemon, through the real entry point.
VERB = """
import contextlib, io, sys

from ldirector.cli.main import main

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    main([sys.argv[1], sys.argv[2]])
print("\\n".join(sorted(sys.modules)))
"""

#: Only some configs need these: their importers are the features that use them.
OPTIONAL = {
    "aiohttp",  # the status page (httpstatus=) and http_proxy checks
    "jinja2",  # alert mails
    "prometheus_client",
    "dns",  # the dns check
    "ldap3",
    "aiomysql",
    "pymysql",
    "asyncpg",
    "psycopg",
    "oracledb",
    "pyrad",
    "uvloop",  # the daemon's loop, imported as the daemon starts running
    "email",  # emailalert= addresses and alert mails
    "smtplib",
    "difflib",  # "did you mean" hints for mistakes
    "tempfile",
    "shutil",
    "logging.handlers",  # logfile= a syslog facility
    "ldirector.cli.check",  # check --probe / --plan
    "ldirector.config.keepalived",  # import
    "ldirector.engine.shadow",  # --shadow start
    "ldirector.observe.web",  # httpstatus=
    "ldirector.observe.render",  # status -v and the daemon's status replies
}


def _modules(tmp_path: Path, probe: str, *args: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDIRECTOR_")}
    env["LDIRECTOR_RUN_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    )
    return set(done.stdout.split())


def _loaded(modules: set[str], names: set[str]) -> set[str]:
    """The ``names`` (packages or modules) of which ``modules`` holds the module or a part."""
    return {n for n in names if any(m == n or m.startswith(n + ".") for m in modules)}


def test_start_loads_nothing_the_config_does_not_use(tmp_path: Path) -> None:
    config = tmp_path / "ldirectord.cf"
    config.write_text(CONFIG)
    modules = _modules(tmp_path, START, str(config), str(tmp_path))
    assert _loaded(modules, OPTIONAL | {"ldirector.config.render"}) == set()  # check's reports
    # The checks are imported by type at their first run, not with the engine.
    assert {m for m in modules if m.startswith("checks.")} == {"checks.types"}


def test_the_verbs_that_run_no_daemon_load_no_event_loop(tmp_path: Path) -> None:
    config = tmp_path / "ldirectord.cf"
    config.write_text(CONFIG)
    daemon_only = {"asyncio", "ssl", "ldirector.engine"}
    for verb in ("status", "stop", "check"):
        modules = _modules(tmp_path, VERB, str(config), verb)
        assert _loaded(modules, daemon_only | OPTIONAL) == set(), verb
        # Of the daemon's package, only the pid file's rules.
        daemon = {m for m in modules if m.startswith("ldirector.daemon.")}
        assert daemon == {"ldirector.daemon.process"}, verb


def test_a_config_that_mails_and_logs_to_syslog_loads_what_it_needs(tmp_path: Path) -> None:
    """The other side of the first test: the probe does see what a config needs."""
    config = tmp_path / "ldirectord.cf"
    config.write_text('emailalert = "ops@example.org"\nlogfile = "daemon"\n' + CONFIG)
    modules = _modules(tmp_path, START, str(config), str(tmp_path))
    assert {"email.headerregistry", "logging.handlers"} <= modules
