"""The real daemon under faults, with traffic: nothing a fault does may cost a healthy real a
request, delay a real's failure past checkinterval + checktimeout + 1 s, grow the daemon past
200 MB or print a traceback.

One rig for the module (``faultrig``): the daemon (``ldirector CONFIG start``, netlink backend)
directs a VIP to three HTTP reals in namespaces while a client sends 50 requests a second
through it, each on a new connection, each checked. The faults run one after another; during
each one the third real's server stops and starts again, and a thread polling the kernel's
table every 0.1 s times when the daemon applied each change. rs1 and rs2 never stop, so a
request that fails counts against the bar unless it met the stopped real: refused (nothing
listens), reset or cut off (its listener closed under it) while that real was stopped and
not yet out of the table. The poller also checks that rs1 and rs2 stay in the table.

The last test prints one row per fault and writes the table to artifacts/kernel/faults.txt,
the daemon's logs beside it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .faultrig import (
    ADDR,
    BAR,
    DIRECTOR,
    HEALTHY,
    RATE,
    SMTP_HOLE,
    SMTP_REFUSED,
    STATE_DIRS,
    STATUS_PORT,
    VICTIM,
    VIP,
    Rig,
    Spawned,
    config_text,
    fill,
    real,
    running,
    teardown_network,
)
from .faultscripts import FLOOD
from .faultwatch import Dests, format_table
from .vmtools import inside_netns, proc_ip_vs, sh

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "kernel"
WEB = f"{VIP}:80"

LEGEND = (
    f"sent/failed: requests begun during the fault ({RATE:g}/s, one connection each) and those "
    "that failed on a healthy real; to-down: requests that met the stopped real before the "
    "kernel dropped it; applied: transitions the kernel got (a real out, a real back); down "
    f"max / up max: seconds from the server stopping (starting) to the kernel's table changing "
    f"(bar for down: {BAR:g} s); RSS MB: the daemon's peak resident memory (VmHWM); fds: its "
    "most open descriptors; tb: tracebacks in any log."
)


@pytest.fixture(scope="module")
def rig(vm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    teardown_network()
    sh("ip", "netns", "add", DIRECTOR)
    try:
        with inside_netns(DIRECTOR), running(tmp_path_factory.mktemp("faults")) as built:
            yield built
    finally:
        teardown_network()


def passes(rig: Rig, fault: str, *extra: str) -> None:
    row = next(r for r in rig.rows if r.fault == fault)
    problems = [*rig.problems(row), *extra]
    assert not problems, f"{fault}: " + "; ".join(problems)


def broken_configs(base: str) -> list[str]:
    """Configs the loader must refuse (each checked to be refused), for reloads."""
    cut = base.index(f"virtual={VIP}:") + len(f"virtual={VIP}:")
    return [
        base + "\tschedflags =\n",
        base + '\thttpmethod=head\n\treceive="(["\n',
        base + "!!garbage line ===\n\x00\udcff\udcfe junk\n",
        base[:cut],
        base + "\treal=10.81.9.9:99999 masq\n",
        base.replace("checkinterval=1", "checkinterval=abc"),
        base + "\udcff" * 100_000 + "\n",
        base + f"virtual={WEB}\n\treal={real('rs1')} masq\n",
    ]


def weighs(weight: int) -> Callable[[Dests], bool]:
    return lambda dests: dests.get(real("rs1")) == weight


def log_lines(rig: Rig, *words: str) -> list[str]:
    text = rig.logs().get("log", "")
    return [line for line in text.splitlines() if any(w in line for w in words)]


@pytest.mark.timeout(900)  # the module's rig starts in this test's setup
def test_fault_1_reloads_valid_and_broken(rig: Rig) -> None:
    fault = "1 reloads (50)"
    broken = broken_configs(rig.base)
    refusals = len(log_lines(rig, "keeping the running configuration"))
    slow: list[float] = []
    unapplied: list[int] = []
    errors: list[BaseException] = []

    def reloads() -> None:
        try:
            for n in range(50):
                if n % 2:
                    slow.append(rig.switch(broken[n // 2 % len(broken)]))
                    continue
                weight = 2 if n // 2 % 2 == 0 else 1
                slow.append(rig.switch(config_text(rig.logfile, weight=weight)))
                took = rig.view.wait(weighs(weight), time.monotonic(), 10)
                if took is None:
                    unapplied.append(n)
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    with rig.fault(fault) as row:
        driver = threading.Thread(target=reloads, name="reloads")
        driver.start()
        for _ in range(3):
            rig.cycle(row)
            if not driver.is_alive():
                break
        driver.join(600)
        assert not driver.is_alive(), "the reloads did not finish within 600 s"
        rig.switch(rig.base)
        refused = len(log_lines(rig, "keeping the running configuration")) - refusals
        row.notes.append(
            f"{len(slow)} reloads, slowest {max(slow, default=0):.2f} s; "
            f"{refused} broken configs refused"
        )
    assert not errors, errors
    passes(rig, fault, *([f"valid reloads not applied: {unapplied}"] if unapplied else []))


@pytest.mark.timeout(1200)  # ten starts of the daemon under emulation
def test_fault_2_kill_9_and_restart(rig: Rig) -> None:
    fault = "2 kill -9 and restart (10)"
    with rig.fault(fault) as row:
        took = []
        for n in range(10):
            rig.daemon.kill9()
            took.append(rig.daemon.start())
            if n in (4, 9):
                rig.cycle(row)
        row.notes.append(f"restarts took {min(took):.1f} to {max(took):.1f} s until READY=1")
    passes(rig, fault)


def test_fault_3_state_directories_full(rig: Rig) -> None:
    fault = "3 state dirs full"
    with rig.fault(fault) as row:
        filled = [fill(directory) for directory in STATE_DIRS]
        try:
            row.notes.append(f"filled {filled} bytes in {[str(d) for d in STATE_DIRS]}")
            rig.view.must_have = frozenset({real("rs1")})
            done = rig.cli("drain", WEB, real("rs2"), "--timeout", "1")
            said = " ".join((done.stdout + done.stderr).split())[:200]
            row.notes.append(f"ldirector drain: exit {done.returncode}: {said}")
            drained = rig.view.wait(lambda d: d.get(real("rs2"), 0) == 0, time.monotonic(), 15)
            row.notes.append("the drain was applied" if drained else "the drain was NOT applied")
            rig.cycle(row)
            done = rig.cli("enable", WEB, real("rs2"))
            said = " ".join((done.stdout + done.stderr).split())[:200]
            row.notes.append(f"ldirector enable: exit {done.returncode}: {said}")
            rig.wait_table({real(n) for n in (*HEALTHY, VICTIM)})
            rig.view.must_have = frozenset(real(n) for n in HEALTHY)
            full = log_lines(rig, "space", "ENOSPC")
            row.notes.append(f"log lines about the full disk: {len(full)}; {full[:1]}")
        finally:
            for directory in STATE_DIRS:
                (directory / "filler").unlink(missing_ok=True)
    passes(rig, fault)


def test_fault_4_log_directory_removed(rig: Rig) -> None:
    fault = "4 log dir removed"
    with rig.fault(fault) as row:
        rig.archived_logs.append(rig.logfile.read_text(errors="replace"))
        shutil.rmtree(rig.logdir)
        rig.cycle(row)
        rig.logdir.mkdir()
        rig.cycle(row)
        deleted = f"Deleted real server: {real(VICTIM)}"
        resumed = log_lines(rig, deleted)
        row.notes.append(
            f"log lines in the recreated file: {len(rig.logs().get('log', '').splitlines())}"
        )
        elsewhere = sum(
            deleted in text for name, text in rig.logs().items() if name.startswith("daemon")
        )
        row.notes.append(
            f"outputs holding the line written while the directory was gone: {elsewhere}"
        )
    passes(rig, fault, *([] if resumed else ["nothing was logged in the recreated directory"]))


def test_fault_5_status_page_flood(rig: Rig) -> None:
    fault = "5 httpstatus flood"
    argv = [sys.executable, "-c", FLOOD, "127.0.0.1", str(STATUS_PORT), "2000", "20", "5", "15"]
    with rig.fault(fault) as row:
        flood = Spawned(argv, "flood")
        try:
            row.notes.append(f"flood: {flood.expect('open', 180)}")
            rig.cycle(row)
            summary = json.loads(flood.expect("done", 180).split(" ", 1)[1])
            row.notes.append(f"flood: {summary}")
        finally:
            flood.kill()
    passes(rig, fault)
    # Behind 2,000 idle connections the endpoint still answers status requests.
    assert summary["status_ok"] > 0, summary


HOSTILE_VIRTUALS = (
    f"virtual={VIP}:389\n"
    f"\treal={ADDR['hostile']}:389 masq\n"
    "\tservice=ldap\n"
    '\trequest="dc=example,dc=org"\n'
    '\treceive="dc=example"\n'
    f"virtual={VIP}:8080\n"
    f"\treal={ADDR['hostile']}:80 masq\n"
    "\tservice=http\n"
    '\trequest="/"\n'
    '\treceive="ok"\n'
)


def kernel_table() -> dict[str, dict[str, int]]:
    with open("/proc/thread-self/net/ip_vs", encoding="ascii", errors="replace") as stream:
        return proc_ip_vs(stream.read(1 << 22))


def test_fault_6_hostile_ldap_and_http_reals(rig: Rig) -> None:
    fault = "6 hostile LDAP + HTTP reals"
    with rig.fault(fault) as row:
        rig.switch(config_text(rig.logfile, virtuals=HOSTILE_VIRTUALS))
        time.sleep(3)  # a few rounds of checks against both
        rig.cycle(row)
        rig.cycle(row)
        table = kernel_table()
        row.notes.append(
            "hostile reals in the kernel: "
            f"{ {k: v for k, v in table.items() if k != f'TCP {WEB}'} }"
        )
        rig.switch(rig.base)
    passes(rig, fault)


def test_fault_7_dead_smtp_server(rig: Rig) -> None:
    fault = "7 dead SMTP server"
    alerts = 'emailalert="ops@example.org"\nsmtp=127.0.0.1:{}\n'
    with rig.fault(fault) as row:
        rig.switch(config_text(rig.logfile, globals_=alerts.format(SMTP_REFUSED)))
        rig.cycle(row)
        rig.switch(config_text(rig.logfile, globals_=alerts.format(SMTP_HOLE)))
        rig.cycle(row)
        rig.cycle(row)
        rig.switch(rig.base)
        failed = log_lines(rig, "emailalert failed", "emailalert")
        row.notes.append(f"emailalert log lines: {len(failed)}; last: {failed[-1:]}")
    passes(rig, fault)


ODD_ENTRIES = [
    # an IPv6 destination under an IPv4 service (tunnelling allows mixed families)
    ("-a", "-t", f"{VIP}:9999", "-r", "[fd00::5]:80", "-i", "-w", "1"),
    # a GUE-encapsulated tunnel destination
    (
        "-a",
        "-t",
        f"{VIP}:9999",
        "-r",
        "10.81.9.9:80",
        "-i",
        "--tun-type",
        "gue",
        "--tun-port",
        "6080",
    ),
    # thresholds
    ("-a", "-t", f"{VIP}:9999", "-r", "10.81.9.10:80", "-m", "-x", "10", "-y", "5"),
    # an IPv6 firewall-mark service with scheduler flags
    ("-A", "-f", "77", "-6", "-s", "sh", "-b", "sh-fallback,sh-port"),
    # SCTP, and one-packet UDP with persistence
    ("-A", "--sctp-service", f"{VIP}:9998", "-s", "mh"),
    ("-A", "-u", f"{VIP}:9997", "-s", "rr", "-o", "-p", "60"),
]
FOREIGN_CLEANUP = [
    ("-D", "-t", f"{VIP}:9999"),
    ("-D", "-f", "77", "-6"),
    ("-D", "--sctp-service", f"{VIP}:9998"),
    ("-D", "-u", f"{VIP}:9997"),
]


def try_ipvsadm(*args: str) -> str:
    done = subprocess.run(
        ["ipvsadm", *args], capture_output=True, text=True, check=False, timeout=60
    )
    return "ok" if done.returncode == 0 else done.stderr.strip()[:80] or f"exit {done.returncode}"


def status_page() -> str:
    with contextlib.suppress(OSError):
        url = f"http://127.0.0.1:{STATUS_PORT}/status"
        with urllib.request.urlopen(url, timeout=10) as reply:
            return f"HTTP {reply.status}"
    return "no answer"


def test_fault_8_foreign_ipvs_entries(rig: Rig) -> None:
    fault = "8 foreign IPVS entries"
    foreign = f"{VIP}:9999"
    untouched = False
    with rig.fault(fault) as row:
        try:
            made = [try_ipvsadm("-A", "-t", foreign, "-s", "rr")]
            made.append(try_ipvsadm("-a", "-t", foreign, "-r", real("rs1"), "-m", "-w", "3"))
            made += [try_ipvsadm(*entry) for entry in ODD_ENTRIES]
            row.notes.append(f"ipvsadm made: {made}")
            rig.cycle(row)
            edits = [
                try_ipvsadm("-E", "-t", foreign, "-s", "wlc", "-p", "120"),
                try_ipvsadm("-e", "-t", foreign, "-r", real("rs1"), "-m", "-w", "0"),
            ]
            row.notes.append(f"ipvsadm edits: {edits}; status page: {status_page()}")
            rig.cycle(row)
            time.sleep(2 * 2.0)  # past two resyncs: ldirector must leave the foreign service be
            kept = kernel_table().get(f"TCP {foreign}", {})
            row.notes.append(f"the foreign service afterwards: {kept}")
            untouched = kept.get(real("rs1")) == 0
        finally:
            for entry in FOREIGN_CLEANUP:
                try_ipvsadm(*entry)
    passes(rig, fault, *([] if untouched else ["ldirector changed the foreign service"]))


def test_fault_table(rig: Rig, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a fault: prints the table of every fault that ran and saves it with the logs."""
    table = format_table(rig.rows, LEGEND)
    with contextlib.suppress(OSError):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "faults.txt").write_text(table)
        logs = ARTIFACTS / "faults"
        logs.mkdir(exist_ok=True)
        for name, text in rig.logs().items():
            (logs / f"{name}.txt").write_text(text[-2_000_000:])
    with capsys.disabled():
        print("\n" + table, flush=True)
    assert rig.rows, "no fault ran"
