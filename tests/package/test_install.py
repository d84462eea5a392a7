"""The Debian package on a director that runs Debian's ldirectord: install over it, run the
ldirectord contract and Debian's own OCF agent against ours, read the manual pages, roll back,
and purge. The VM's /etc, /usr and /var are overlays, so the upper directories show exactly which
files the package left behind.

The tests run in file order: each step starts from the state the one before left.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sandbox import REPO

DEBS = sorted(REPO.glob("dist/ldirector_*_all.deb"))
#: Debian's ldirectord package (downloaded by scripts/vm-test --package), for the rollback.
DEBIAN_LDIRECTORD = os.environ.get("LDIRECTOR_DEBIAN_LDIRECTORD", "")
CONFIG = Path("/etc/ha.d/ldirectord.cf")
PID_FILE = Path("/run/ldirectord.ldirectord.pid")
LOG = Path("/var/log/ldirectord.log")
PROGRAM = "/usr/sbin/ldirectord"
DEBIAN_AGENT = "/usr/lib/ocf/resource.d/heartbeat/ldirectord"
#: The operator's configuration: a virtual on the VM's loopback, one real, checked by connect.
OPERATOR_CONFIG = f"""# the operator's own file: no package may change or remove it
logfile = "{LOG}"
checkinterval = 1
virtual = 127.0.0.1:8080
	checktype = connect
	real = 127.0.0.2:8080 masq
"""
#: What dpkg, apt and the triggers they run keep about packages; not the package's files.
BOOKKEEPING = (
    "/var/lib/dpkg/",
    "/var/log/dpkg.log",
    "/var/cache/debconf/",
    "/var/cache/man/",
    "/etc/ld.so.cache",
    "/usr/sbin/policy-rc.d",
)

ENV = {
    **os.environ,
    "DEBIAN_FRONTEND": "noninteractive",
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
}
for _name in ("PYTHONPATH", "VIRTUAL_ENV", "NOTIFY_SOCKET"):
    ENV.pop(_name, None)

state: dict[str, object] = {}
#: Seconds each command took: emulation makes some slow, and this says which.
TIMINGS: list[tuple[float, str]] = []


def run(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    start = time.monotonic()
    try:
        return subprocess.run(
            argv,
            env=ENV,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        TIMINGS.append((time.monotonic() - start, " ".join(argv)))


def ok(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = run(*argv, timeout=timeout)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def package_state(name: str) -> str:
    done = run("dpkg-query", "-W", "-f=${db:Status-Abbrev}", name)
    return done.stdout.strip() if done.returncode == 0 else "absent"


def overlay_uppers() -> dict[str, Path]:
    """Mount point -> upper directory of each overlay the VM put on the host's root."""
    uppers = {}
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if fields[2] == "overlay" and fields[1] in ("/etc", "/usr", "/var"):
            options = dict(o.partition("=")[::2] for o in fields[3].split(","))
            uppers[fields[1]] = Path(options["upperdir"])
    return uppers


def changed_files() -> set[str]:
    """Every file or link the overlays hold (made or changed in the VM), as guest paths."""
    found = set()
    for mount, upper in overlay_uppers().items():
        for dirpath, _, names in os.walk(upper):
            for name in names:
                path = Path(dirpath) / name
                mode = path.lstat().st_mode
                if stat.S_ISCHR(mode) and path.lstat().st_rdev == 0:
                    continue  # a whiteout: a deletion, nothing left behind
                found.add(mount + "/" + str(path.relative_to(upper)))
    return found


def wait_for(predicate: object, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.2)
    return bool(callable(predicate) and predicate())


@pytest.fixture(scope="module", autouse=True)
def vm() -> Iterator[None]:
    if not DEBS:
        pytest.fail("no dist/ldirector_*_all.deb: run `make deb` first")
    uppers = overlay_uppers()
    assert set(uppers) == {"/etc", "/usr", "/var"}, "needs the VM's overlays on /etc /usr /var"
    run("modprobe", "ip_vs")
    # Under emulation every read of the host's root is slow, and dpkg reads its whole database
    # on every run: scripts/vm-test packs it into one file, unpacked into memory here. (Its
    # changes are dpkg's bookkeeping, which the purge test does not count anyway.)
    snapshot = os.environ.get("LDIRECTOR_PACKAGE_DPKG")
    if snapshot:
        Path("/run/package-test").mkdir()
        ok("tar", "-C", "/run/package-test", "-xf", snapshot)
        ok("mount", "--bind", "/run/package-test/dpkg", "/var/lib/dpkg")
    # Rebuilding man-db's index after each install takes minutes there too; `man` reads the
    # pages without it.
    Path("/var/lib/man-db/auto-update").unlink(missing_ok=True)
    # As in containers and image builds: maintainer scripts start no service; the tests do.
    Path("/usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
    Path("/usr/sbin/policy-rc.d").chmod(0o755)
    yield
    if PID_FILE.exists():
        run(PROGRAM, "stop", timeout=90)
    out = os.environ.get("LDIRECTOR_PACKAGE_OUT")
    if out:
        lines = [f"{seconds:7.1f}s  {command}" for seconds, command in TIMINGS]
        Path(out, "timings.txt").write_text("\n".join(lines) + "\n")


def test_before_debian_ldirectord_runs_the_operators_config() -> None:
    assert package_state("ldirectord") == "ii", "the VM's root should have Debian's ldirectord"
    for dependency in ("python3-aiohttp", "python3-dnspython", "python3-jinja2"):
        assert package_state(dependency) == "ii", f"{dependency} must be installed first"
    CONFIG.write_text(OPERATOR_CONFIG)
    state["before"] = changed_files()


def test_install_replaces_debian_ldirectord() -> None:
    done = ok("dpkg", "-i", str(DEBS[-1]))
    assert package_state("ldirector") == "ii"
    # Removed, not purged: its configuration files stay registered to it ("c": config-files).
    assert package_state("ldirectord")[1:2] == "c", done.stdout
    owner = ok("dpkg-query", "-S", PROGRAM).stdout
    assert owner.startswith("ldirector:"), owner
    assert ok(PROGRAM, "--version").stdout.startswith("ldirector ")
    assert ok("/usr/sbin/ldirector", "--version").stdout.startswith("ldirector ")
    # The operator's file is untouched; the service files under ldirectord's names are ours.
    assert CONFIG.read_text() == OPERATOR_CONFIG
    assert "LDIRECTOR_DEFAULTS" in Path("/etc/init.d/ldirectord").read_text()
    assert "Type=notify" in Path("/lib/systemd/system/ldirectord.service").read_text()
    assert "/var/log/ldirectord.log" in Path("/etc/logrotate.d/ldirectord").read_text()
    state["files"] = [
        line for line in ok("dpkg-query", "-L", "ldirector").stdout.splitlines() if line != "/."
    ]


def test_ldirectord_command_line_contract() -> None:
    stopped = run(PROGRAM, "status")
    assert (stopped.returncode, stopped.stdout) == (3, f"ldirectord is stopped for {CONFIG}\n")
    assert ok(PROGRAM, "start", timeout=120).returncode == 0
    pid = int(PID_FILE.read_text())
    assert Path(f"/proc/{pid}").exists()
    running = run(PROGRAM, "status")
    assert running.returncode == 0
    assert running.stderr == f"ldirectord for {CONFIG} is running with pid: {pid}\n"
    assert ok(PROGRAM, "start").returncode == 0 and int(PID_FILE.read_text()) == pid
    table = ok("ipvsadm", "-Ln").stdout
    assert "127.0.0.1:8080" in table
    assert ok(PROGRAM, "reload").returncode == 0
    assert wait_for(lambda: "Reloading Linux Director Daemon config on signal" in LOG.read_text())
    assert ok(PROGRAM, "stop", timeout=90).returncode == 0
    assert not PID_FILE.exists() and not Path(f"/proc/{pid}").exists()
    assert run(PROGRAM, "status").returncode == 3
    assert run(PROGRAM, "reload").returncode == 1
    assert run(PROGRAM, "frobnicate").returncode == 255
    broken = Path("/tmp/broken.cf")
    broken.write_text("virtual = 192.0.2.10\n")
    assert run(PROGRAM, str(broken), "start").returncode == 2
    assert not Path("/run/ldirectord.broken.cf.pid").exists()


def test_init_script_drives_it() -> None:
    init = "/etc/init.d/ldirectord"
    assert ok(init, "start", timeout=120).returncode == 0
    assert ok(init, "status").returncode == 0
    assert ok(init, "stop", timeout=90).returncode == 0
    assert not PID_FILE.exists()


def test_debian_ocf_agent_passes_ocf_tester() -> None:
    if shutil.which("ocf-tester") is None:
        pytest.fail("ocf-tester (resource-agents) is not installed")
    done = run(
        "ocf-tester",
        "-n",
        "lvs",
        "-o",
        f"configfile={CONFIG}",
        "-o",
        f"ldirectord={PROGRAM}",
        DEBIAN_AGENT,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("passed all tests")
    assert not PID_FILE.exists()


def test_our_ocf_agent_validates_with_check() -> None:
    agent = "/usr/lib/ocf/resource.d/ldirector/ldirector"
    env = {"OCF_ROOT": "/usr/lib/ocf", "OCF_RESKEY_configfile": str(CONFIG)}
    good = subprocess.run(
        [agent, "validate-all"], env={**ENV, **env}, capture_output=True, text=True, timeout=60
    )
    assert good.returncode == 0, good.stderr
    bad = subprocess.run(
        [agent, "validate-all"],
        env={**ENV, **env, "OCF_RESKEY_configfile": "/tmp/broken.cf"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 6, bad.stderr


def test_manual_pages_render() -> None:
    env = {**ENV, "MANPAGER": "cat", "MANWIDTH": "80"}
    for args, needle in (
        (("5", "ldirectord.cf"), "checktype"),
        (("8", "ldirectord"), "ldirectord [-d|--debug]"),
        (("8", "ldirector"), "Upgrading from"),
    ):
        done = subprocess.run(
            ["man", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert needle in done.stdout, args
    assert Path("/usr/share/bash-completion/completions/ldirectord").exists()


def test_rollback_to_debian_ldirectord_and_back() -> None:
    if not DEBIAN_LDIRECTORD:
        pytest.skip("Debian's ldirectord package was not downloaded")
    # What `apt install ldirectord` does, in dpkg's two steps (apt would read its whole cache).
    ok("dpkg", "--remove", "ldirector")
    ok("dpkg", "-i", DEBIAN_LDIRECTORD)
    assert package_state("ldirectord") == "ii"
    assert package_state("ldirector")[1:2] == "c"
    assert "perl" in Path(PROGRAM).read_text().splitlines()[0]
    assert CONFIG.read_text() == OPERATOR_CONFIG
    # And forward again, as an operator would after fixing whatever made them roll back.
    ok("dpkg", "-i", str(DEBS[-1]))
    assert ok(PROGRAM, "--version").stdout.startswith("ldirector ")
    # ldirectord's removal clears the init script's execute bit; ours gives it back.
    assert os.access("/etc/init.d/ldirectord", os.X_OK)


def test_purge_leaves_only_the_operators_config() -> None:
    ok(PROGRAM, "start", timeout=120)  # run-time files: pid, state, log
    ok(PROGRAM, "stop", timeout=90)
    ok("dpkg", "--purge", "ldirector")
    assert package_state("ldirector") == "absent"
    files = state["files"]
    assert isinstance(files, list)
    left = [p for p in files if os.path.lexists(p) and not os.path.isdir(p)]
    assert left == []
    for path in ("/usr/share/ldirector", "/var/lib/ldirector", "/run/ldirector", str(LOG)):
        assert not os.path.lexists(path), path
    before = state["before"]
    assert isinstance(before, set)
    new = sorted(
        p for p in changed_files() - before if not p.startswith(BOOKKEEPING) and p != str(CONFIG)
    )
    assert new == []
    assert CONFIG.read_text() == OPERATOR_CONFIG
