"""contrib/: the init script and the OCF agent driven through their actions against a running
ldirector, the logrotate snippet run by logrotate itself, and the systemd unit verified."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ldirector.daemon import process
from tests.support.sandbox import DRIVER, REPO, Sandbox

CONTRIB = REPO / "contrib"
INIT = CONTRIB / "ldirectord.init"
UNIT = CONTRIB / "ldirectord.service"
OCF = CONTRIB / "ocf" / "ldirector"
SHELLFUNCS = Path("/usr/lib/ocf/lib/heartbeat/ocf-shellfuncs")

# OCF return codes
SUCCESS, ERR_GENERIC, ERR_INSTALLED, ERR_CONFIGURED, NOT_RUNNING = 0, 1, 5, 6, 7


def sh(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


# --- SysV/LSB init script --------------------------------------------------------------------


@pytest.fixture
def init_env(sandbox: Sandbox, wrapper: Path, tmp_path: Path) -> dict[str, str]:
    defaults = tmp_path / "default-ldirector"
    defaults.write_text(f"CONFIG_FILE={sandbox.config}\nDAEMON={wrapper}\n")
    return {**sandbox.env, "LDIRECTOR_DEFAULTS": str(defaults), "SYSTEMCTL_SKIP_REDIRECT": "1"}


def test_init_script_actions(sandbox: Sandbox, init_env: dict[str, str]) -> None:
    def init(action: str) -> subprocess.CompletedProcess[str]:
        done = sh([str(INIT), action], init_env)
        sandbox._remember()
        return done

    stopped = init("status")
    assert (stopped.returncode, stopped.stdout) == (
        3,
        f"ldirectord is stopped for {sandbox.config}\n",
    )
    assert init("start").returncode == 0
    first = sandbox.pid()
    assert first is not None and process.is_ldirector(first)
    running = init("status")
    assert running.returncode == 0
    assert running.stderr == f"ldirectord for {sandbox.config} is running with pid: {first}\n"
    assert init("start").returncode == 0 and sandbox.pid() == first
    assert init("reload").returncode == 0
    assert sandbox.wait_for(lambda: sandbox.events_lines().count("reload") == 1)
    assert init("force-reload").returncode == 0
    assert sandbox.wait_for(lambda: sandbox.events_lines().count("reload") == 2)
    assert init("restart").returncode == 0
    second = sandbox.pid()
    assert second not in (None, first) and not process.is_ldirector(first)
    assert init("try-restart").returncode == 0
    third = sandbox.pid()
    assert third is not None and third != second
    assert init("stop").returncode == 0
    assert not process.is_ldirector(third)
    assert init("status").returncode == 3
    assert init("try-restart").returncode == 0 and sandbox.pid() is None
    assert init("reload").returncode == 1


def test_init_script_without_config_or_with_bad_action(
    sandbox: Sandbox, init_env: dict[str, str], wrapper: Path, tmp_path: Path
) -> None:
    usage = sh([str(INIT), "bogus"], init_env)
    assert usage.returncode == 2 and usage.stderr.startswith("Usage: ")
    # Like ldirectord's script: no config file, nothing to do.
    (tmp_path / "default-ldirector").write_text(
        f"CONFIG_FILE={tmp_path}/absent.cf\nDAEMON={wrapper}\n"
    )
    assert sh([str(INIT), "start"], init_env).returncode == 0
    assert sh([str(INIT), "status"], init_env).returncode == 3
    assert sandbox.pid() is None
    # No program: LSB "not installed".
    (tmp_path / "default-ldirector").write_text(f"DAEMON={tmp_path}/nope\n")
    assert sh([str(INIT), "start"], init_env).returncode == 5
    assert sh([str(INIT), "status"], init_env).returncode == 4
    assert sh([str(INIT), "stop"], init_env).returncode == 0


# --- OCF resource agent ----------------------------------------------------------------------


@pytest.fixture
def program(tmp_path: Path, sandbox: Sandbox) -> Path:
    """The program the OCF agent runs: the test driver for ldirectord's verbs, and the real
    command line for `check` (the driver's stand-in config reader has no validator)."""
    path = tmp_path / "ocf-bin" / "ldirector-ocf"
    path.parent.mkdir()
    path.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = check ] && exec {sys.executable} -m ldirector "$@"\n'
        f'exec {sys.executable} {DRIVER} "$@"\n'
    )
    path.chmod(0o755)
    return path


@pytest.fixture(params=["ocf-shellfuncs", "standalone"])
def ocf_env(request: pytest.FixtureRequest, sandbox: Sandbox, program: Path) -> dict[str, str]:
    env = {
        **sandbox.env,
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE": "lvs",
        "OCF_RESKEY_configfile": str(sandbox.config),
        "OCF_RESKEY_ldirectord": str(program),
        "PYTHONPATH": str(REPO),
    }
    if request.param == "ocf-shellfuncs":
        if not SHELLFUNCS.exists():
            pytest.skip("resource-agents is not installed (tests/deps/operator.apt)")
    else:
        env["OCF_FUNCTIONS_DIR"] = "/nonexistent"
    return env


def test_ocf_agent_actions(sandbox: Sandbox, ocf_env: dict[str, str]) -> None:
    def ocf(action: str) -> int:
        done = sh([str(OCF), action], ocf_env)
        sandbox._remember()
        return done.returncode

    assert ocf("validate-all") == SUCCESS
    assert ocf("monitor") == NOT_RUNNING
    assert ocf("stop") == SUCCESS  # stopping a stopped resource succeeds
    assert ocf("start") == SUCCESS
    pid = sandbox.pid()
    assert pid is not None and process.is_ldirector(pid)
    assert ocf("monitor") == SUCCESS
    assert ocf("start") == SUCCESS and sandbox.pid() == pid  # idempotent
    assert ocf("reload") == SUCCESS
    assert sandbox.wait_for(lambda: "reload" in sandbox.events_lines())
    # a config broken after start never hides or orphans the running instance.
    sandbox.write_config(f'logfile="{sandbox.logfile}"', "broken")
    assert ocf("monitor") == SUCCESS
    assert ocf("stop") == SUCCESS
    assert not process.is_ldirector(pid)
    assert ocf("monitor") == NOT_RUNNING
    assert ocf("stop") == SUCCESS


def test_ocf_agent_failures(sandbox: Sandbox, ocf_env: dict[str, str], tmp_path: Path) -> None:
    # A crashed daemon (stale pid file) is a failure for monitor; stop cleans it up.
    dead = subprocess.Popen(["true"])
    dead.wait()
    sandbox.pid_file.write_text(f"{dead.pid}\n")
    assert sh([str(OCF), "monitor"], ocf_env).returncode == ERR_GENERIC
    assert sh([str(OCF), "stop"], ocf_env).returncode == SUCCESS
    assert not sandbox.pid_file.exists()
    # A broken config: start refuses with "not configured", and starts nothing.
    sandbox.write_config("broken")
    assert sh([str(OCF), "start"], ocf_env).returncode == ERR_CONFIGURED
    assert sandbox.pid() is None
    missing = {**ocf_env, "OCF_RESKEY_configfile": str(tmp_path / "absent.cf")}
    assert sh([str(OCF), "validate-all"], missing).returncode == ERR_CONFIGURED
    absent = {**ocf_env, "OCF_RESKEY_ldirectord": str(tmp_path / "nope")}
    assert sh([str(OCF), "validate-all"], absent).returncode == ERR_INSTALLED
    assert sh([str(OCF), "stop"], absent).returncode == SUCCESS
    assert sh([str(OCF), "frobnicate"], ocf_env).returncode == 3


#: Processes a pid file may name, as the arguments after the interpreter (SCRIPT: a script
#: named ldirectord that only sleeps, OTHER: the same named otherwise; CONFIG: the sandbox's
#: config), and what ``status`` says of them.
LOOKALIKES = [
    (["SCRIPT", "CONFIG", "start"], 0),
    (["-X", "dev", "-B", "SCRIPT", "CONFIG", "start"], 0),
    (["SCRIPT", "--shadow", "CONFIG", "start"], 1),
    (["SCRIPT", "other.cf", "start"], 1),
    (["-c", "import time; time.sleep(60)", "ldirectord", "CONFIG", "start"], 1),
    (["-m", "ldirectorx", "CONFIG", "start"], 1),
    (["OTHER", "CONFIG", "start"], 1),
]


@pytest.mark.parametrize(("args", "status"), LOOKALIKES)
def test_ocf_monitor_judges_a_pid_file_as_status_does(
    sandbox: Sandbox, ocf_env: dict[str, str], tmp_path: Path, args: list[str], status: int
) -> None:
    """The agent's monitor reads the pid file and /proc itself (no run of the program): it
    must tell ldirector running this config from anything else exactly as ``status`` does."""
    words = {"CONFIG": str(sandbox.config)}
    for word, name in (("SCRIPT", "ldirectord"), ("OTHER", "notldirector")):
        script = tmp_path / "lookalike" / name
        script.parent.mkdir(exist_ok=True)
        script.write_text("import time\ntime.sleep(60)\n")
        words[word] = str(script)
    argv = [sys.executable, *(words.get(a, a) for a in args)]
    proc = subprocess.Popen(argv, cwd=tmp_path)
    try:
        sandbox.pid_file.write_text(f"{proc.pid}\n")
        assert sandbox.cli("status").returncode == status
        expected = SUCCESS if status == 0 else ERR_GENERIC
        assert sh([str(OCF), "monitor"], ocf_env).returncode == expected
    finally:
        proc.kill()
        proc.wait()
    # The same pid, now gone: stale for both.
    assert sandbox.cli("status").returncode == 1
    assert sh([str(OCF), "monitor"], ocf_env).returncode == ERR_GENERIC
    sandbox.pid_file.write_text("garbage\n")
    assert sandbox.cli("status").returncode == 1
    assert sh([str(OCF), "monitor"], ocf_env).returncode == ERR_GENERIC


def test_ocf_validate_all_runs_the_config_check(sandbox: Sandbox, ocf_env: dict[str, str]) -> None:
    """validate-all reports a config with errors (it used to see only that the file exists)."""
    assert sh([str(OCF), "validate-all"], ocf_env).returncode == SUCCESS
    sandbox.write_config(f'logfile="{sandbox.logfile}"', "virtual = 192.0.2.10")
    done = sh([str(OCF), "validate-all"], ocf_env)
    assert done.returncode == ERR_CONFIGURED
    assert f"{sandbox.config}:2: error: " in done.stderr
    assert sandbox.pid() is None


@pytest.mark.skipif(
    shutil.which("ocf-tester") is None or shutil.which("xmllint") is None,
    reason="resource-agents/libxml2-utils not installed (tests/deps/operator.apt)",
)
def test_ocf_tester_passes(sandbox: Sandbox, program: Path) -> None:
    """resource-agents' own conformance tester: meta-data against the DTD, every action."""
    done = subprocess.run(
        [
            "ocf-tester",
            "-n",
            "lvs",
            "-o",
            f"configfile={sandbox.config}",
            "-o",
            f"ldirectord={program}",
            str(OCF),
        ],
        env={**sandbox.env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("passed all tests")
    assert sandbox.pid() is None  # it ends with the resource stopped


def test_ocf_meta_data(ocf_env: dict[str, str]) -> None:
    done = sh([str(OCF), "meta-data"], ocf_env)
    assert done.returncode == 0
    root = ET.fromstring(done.stdout)  # noqa: S314 (our own agent's output)
    assert root.tag == "resource-agent" and root.get("name") == "ldirector"
    params = {p.get("name"): p for p in root.iter("parameter")}
    assert set(params) == {"configfile", "ldirectord"}
    content = params["configfile"].find("content")
    assert content is not None and content.get("default") == "/etc/ha.d/ldirectord.cf"
    actions = {a.get("name") for a in root.iter("action")}
    assert {"start", "stop", "monitor", "validate-all", "meta-data"} <= actions


# --- Pacemaker: crm.txt ----------------------------------------------------------------------

#: crmsh loading crm.txt into a CIB file, in a mount namespace where it can: it logs to
#: /var/log/crmsh (a tmpfs here) and checks every resource against its agent's meta-data, so
#: ours is added to the resource agents (a tmpfs over them, the others bound back in).
CRMSH_LOAD = """
mount -t tmpfs tmpfs /var/log
mkdir /var/log/crmsh
agents=/usr/lib/ocf/resource.d
mount --bind "$agents" "$ORIG"
mount -t tmpfs tmpfs "$agents"
for dir in "$ORIG"/*; do
    mkdir "$agents/${dir##*/}"
    mount --bind "$dir" "$agents/${dir##*/}"
done
mkdir "$agents/ldirector"
cp "$AGENT" "$agents/ldirector/ldirector"
exec crm configure load update "$CRM_TXT"
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("crm") or not shutil.which("unshare"),
    reason="crmsh (tests/deps/kernel.apt) and root for a mount namespace",
)
@pytest.mark.skipif(
    not Path("/usr/lib/ocf/resource.d/heartbeat/IPaddr2").exists(),
    reason="resource-agents is not installed (tests/deps/kernel.apt)",
)
def test_crm_txt_loads_into_the_cib_the_pacemaker_vm_test_starts_with(tmp_path: Path) -> None:
    """The Pacemaker VM test seeds its nodes' CIB with tests/support/crmxml.py's rendering of
    the lab's crm.txt (crmsh takes minutes under emulation): it must be what crmsh makes of it."""
    from tests.kernel import pacemakerlab
    from tests.support import crmxml

    text = tmp_path / "crm.txt"
    text.write_text(pacemakerlab.crm_config(Path("/usr/sbin/ldirectord")))
    loaded = tmp_path / "cib.xml"
    loaded.write_text(pacemakerlab.SEED_CIB)
    (tmp_path / "agents").mkdir()
    env = {
        **os.environ,
        "CIB_file": str(loaded),
        "HOME": str(tmp_path),
        "ORIG": str(tmp_path / "agents"),
        "AGENT": str(OCF),
        "CRM_TXT": str(text),
    }
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", CRMSH_LOAD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ours = ET.fromstring(pacemakerlab.cib(Path("/usr/sbin/ldirectord")))  # noqa: S314
    theirs = ET.parse(loaded).getroot()  # noqa: S314 (crmsh's output)
    config = [root.find("configuration") for root in (ours, theirs)]
    assert config[0] is not None and config[1] is not None
    assert crmxml.canonical(config[0]) == crmxml.canonical(config[1])
    assert len(config[1].findall("resources//primitive")) == 3


# --- logrotate -------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate not installed")
def test_logrotate_snippet_rotates_a_live_daemons_log(sandbox: Sandbox, tmp_path: Path) -> None:
    conf = tmp_path / "logrotate.conf"
    text = (CONTRIB / "ldirectord.logrotate").read_text()
    assert "/var/log/ldirectord.log {" in text
    conf.write_text(text.replace("/var/log/ldirectord.log", str(sandbox.logfile)))
    pid = sandbox.start()
    done = subprocess.run(
        ["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rotated = sandbox.logfile.with_name(sandbox.logfile.name + ".1")
    assert "Starting Linux Director" in rotated.read_text()
    os.kill(pid, signal.SIGHUP)  # any later line lands in the new file, no signal needed for it
    assert sandbox.wait_for(lambda: "reload" in sandbox.events_lines())
    assert sandbox.wait_for(
        lambda: any("Reloading Linux Director" in ln for ln in sandbox.log_lines())
    )
    assert "Reloading" not in rotated.read_text()
    assert oct(sandbox.logfile.stat().st_mode & 0o777) == oct(0o640)


# --- systemd unit ----------------------------------------------------------------------------


def unit_entries() -> dict[str, list[str]]:
    entries: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            entries.setdefault(key, []).append(value)
    return entries


def test_unit_is_notify_hardened_and_lets_cleanup_finish() -> None:
    unit = unit_entries()
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"] == ["/usr/sbin/ldirectord start"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["KillMode"] == ["mixed"]  # TERM to the main process only: cleanup finishes
    assert "WatchdogSec" in unit
    caps = {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
    assert set(unit["CapabilityBoundingSet"][0].split()) == caps
    assert set(unit["AmbientCapabilities"][0].split()) == caps
    assert unit["ProtectSystem"] == ["strict"]
    writable = " ".join(unit["ReadWritePaths"]).split()
    assert {"/run", "/var/log", "/var/lib/ldirector"} <= set(writable)
    for key in ("ProtectHome", "PrivateTmp", "NoNewPrivileges", "PrivateDevices"):
        assert unit[key] == ["yes"], key


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path, wrapper: Path) -> None:
    text = UNIT.read_text().replace("/usr/sbin/ldirectord", str(wrapper))
    unit = tmp_path / "ldirectord.service"
    unit.write_text(text)
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [
        line
        for line in done.stderr.splitlines()
        if str(unit) in line or "ldirectord.service" in line
    ]
    assert problems == [], done.stderr
