"""One Pacemaker node of the VM test: a director's network namespace running Corosync and Pacemaker.

:class:`Node` starts ``python -c NODE_INIT NAME WORKDIR AGENT`` under ``unshare --mount --uts
--pid`` inside the director's network namespace, so that process is PID 1 there: it makes the
node's private file system, then starts Corosync and Pacemaker.

Why each namespace: Corosync and Pacemaker keep their state in fixed places (/var/lib/corosync,
/var/lib/pacemaker, /run, /var/log) and talk over libqb IPC, which is an abstract unix socket
(private to the network namespace) plus ring buffers in /dev/shm (private only with a mount
namespace of its own); pacemakerd looks for its subdaemons by name in /proc, so without a PID
namespace it would adopt the other node's; and the node name, when it is not in corosync.conf,
comes from uname. So each node gets tmpfs over those directories, its corosync.conf on
/etc/corosync, its ldirector config on /etc/ha.d and the agent under test as
/usr/lib/ocf/resource.d/ldirector/ldirector; the rest of the root (the VM shares the host's,
read-only) is unchanged.

As PID 1 it reaps every orphan: a daemon that exits (ldirector's, after ``stop``) must not
linger as a zombie, which ``status`` would still count as running.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

from .pairrig import DIRECTORS, INT, PORT, ROOT, VIP, ldirector_config
from .vmtools import proc_ip_vs

AGENT = ROOT / "contrib" / "ocf" / "ldirector"
#: Where each node's ldirector logs: /var/log is a tmpfs of the node's own.
NODE_LOG = "/var/log/ldirector.log"
WAIT = 60.0

NODE_INIT = r"""
import os, signal, socket, subprocess, sys, time
name, work, agent = sys.argv[1], sys.argv[2], sys.argv[3]
log = open(os.path.join(work, "init.log"), "a", buffering=1)
def sh(script):
    done = subprocess.run(["sh", "-ec", script], stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        log.write(f"setup failed ({done.returncode})\n")
        sys.exit(1)
socket.sethostname(name)
OCF = "/usr/lib/ocf/resource.d"
sh(f'''
mkdir -p /dev/shm
for dir in /run /var/log /var/lib/pacemaker /var/lib/corosync; do
    mount -t tmpfs -o mode=0755 tmpfs "$dir"
done
# libqb's ring buffers: every daemon, root or hacluster, makes its own.
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mkdir -p /run/ocf-orig /run/crm /run/resource-agents /var/log/pacemaker /var/log/corosync
chown hacluster:haclient /run/crm /var/log/pacemaker
mkdir -m 0750 /var/lib/pacemaker/cib /var/lib/pacemaker/pengine /var/lib/pacemaker/blackbox \
    /var/lib/pacemaker/cores
install -o hacluster -g haclient -m 0600 {work}/cib.xml /var/lib/pacemaker/cib/cib.xml
chown hacluster:haclient /var/lib/pacemaker/*
mount --bind {work}/corosync /etc/corosync
mount --bind {work}/ha.d /etc/ha.d
mount --bind {OCF} /run/ocf-orig
mount -t tmpfs -o mode=0755 tmpfs {OCF}
for dir in /run/ocf-orig/*; do
    [ "${{dir##*/}}" = ldirector ] && continue
    mkdir "{OCF}/${{dir##*/}}"
    mount --bind "$dir" "{OCF}/${{dir##*/}}"
done
mkdir {OCF}/ldirector
cp {agent} {OCF}/ldirector/ldirector
chmod 0755 {OCF}/ldirector/ldirector
''')
log.write("mounts ready\n")
def spawn(argv, out):
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(out, "ab"),
                            stderr=subprocess.STDOUT)
corosync = spawn(["corosync", "-f"], os.path.join(work, "corosync.out"))
# pacemakerd gives up when Corosync's IPC is not there yet: start it once Corosync answers.
deadline = time.monotonic() + 120
while subprocess.run(["corosync-cfgtool", "-s"], capture_output=True).returncode:
    if corosync.poll() is not None or time.monotonic() > deadline:
        log.write("corosync did not come up\n")
        sys.exit(1)
    time.sleep(0.5)
log.write("corosync up\n")
pacemakerd = spawn(["pacemakerd"], os.path.join(work, "pacemakerd.out"))
log.write("pacemakerd started\n")
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    try:
        pid, status = os.wait()
    except ChildProcessError:
        time.sleep(1)
        continue
    if pid in (corosync.pid, pacemakerd.pid):
        log.write(f"{'corosync' if pid == corosync.pid else 'pacemakerd'} exited: {status}\n")
"""

COROSYNC_CONF = """\
totem {{
    version: 2
    cluster_name: ldirector-pair
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}}
nodelist {{
{nodes}
}}
quorum {{
    provider: corosync_votequorum
    two_node: 1
}}
logging {{
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_stderr: no
    to_syslog: no
    timestamp: on
}}
"""


def corosync_conf() -> str:
    """Both directors by name over their eth0 addresses (namespace-only, like every address)."""
    nodes = "\n".join(
        f"    node {{\n        name: {name}\n        nodeid: {i}\n        ring0_addr: {INT[name]}\n"
        "    }"
        for i, name in enumerate(DIRECTORS, 1)
    )
    return COROSYNC_CONF.format(nodes=nodes)


class Node:
    """One director as a cluster node: a PID 1 (pacemakernode) owning its namespaces."""

    def __init__(self, name: str, workdir: Path, cib: str) -> None:
        self.name = name
        self.ns = DIRECTORS[name]
        self.workdir = workdir
        for sub in ("corosync", "ha.d"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        (workdir / "corosync" / "corosync.conf").write_text(corosync_conf())
        (workdir / "cib.xml").write_text(cib)
        self.config = workdir / "ha.d" / "ldirectord.cf"
        self.config.write_text(ldirector_config(Path(NODE_LOG), sync=True))
        self.process: subprocess.Popen[bytes] | None = None
        drop = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
        self.env = {k: v for k, v in os.environ.items() if k not in drop}
        self.env.update(TZ="UTC", PCMK_logfacility="none")
        self._pid1: int | None = None

    def start(self) -> None:
        argv = [
            "ip", "netns", "exec", self.ns, "unshare", "--mount", "--uts", "--pid",
            "--kill-child=SIGKILL", "--propagation", "private", "--mount-proc",
            sys.executable, "-c", NODE_INIT, self.name, str(self.workdir), str(AGENT),
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL)

    @property
    def pid1(self) -> int:
        """The node's PID 1 as the VM sees it: ``unshare``'s one child."""
        if self._pid1 is None:
            assert self.process is not None
            deadline = time.monotonic() + WAIT
            path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            while not (children := path.read_text().split()):
                assert self.process.poll() is None, f"{self.name}: unshare exited"
                assert time.monotonic() < deadline, f"{self.name}: no PID 1"
                time.sleep(0.1)
            self._pid1 = int(children[0])
        return self._pid1

    def wait_mounts(self, timeout: float = WAIT) -> None:
        """Until the node's PID 1 has its file system in place (its agents, its log dirs)."""
        deadline = time.monotonic() + timeout
        log = self.workdir / "init.log"
        while not (log.exists() and "mounts ready" in log.read_text()):
            assert self.process is not None and self.process.poll() is None, self.tail()
            assert time.monotonic() < deadline, f"{self.name}: no file system\n{self.tail()}"
            time.sleep(0.2)

    def argv(self, *argv: str) -> list[str]:
        """``argv`` run inside the node (its network, mounts, hostname and processes)."""
        return ["nsenter", "-t", str(self.pid1), "--net", "--mount", "--uts", "--pid", *argv]

    def run(self, *argv: str, timeout: float = WAIT, check: bool = True) -> str:
        """A command inside the node; its output."""
        done = subprocess.run(
            self.argv(*argv),
            env={**self.env, "HOME": "/tmp"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"{self.name}: {argv}: {done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    def file(self, path: str) -> Path:
        """A file of the node's private file system, read from outside."""
        return Path(f"/proc/{self.pid1}/root{path}")

    def proc_net(self, name: str) -> str:
        """/proc/net/NAME of the node's network namespace."""
        return Path(f"/proc/{self.pid1}/net/{name}").read_text(errors="replace")

    def addresses(self) -> set[str]:
        """The node's local IPv4 addresses, from the kernel's FIB: the move's watch polls this
        every 50 ms, and a process per poll would take CPU from the cluster it times."""
        local = set()
        last = ""
        for line in self.proc_net("fib_trie").splitlines():
            word = line.strip()
            if word.startswith("|-- "):
                last = word[4:]
            elif word.endswith("host LOCAL"):
                local.add(last)
        return local

    def table(self) -> dict[str, int]:
        """The node's IPVS web service as the kernel lists it: real -> weight."""
        return proc_ip_vs(self.proc_net("ip_vs")).get(f"TCP {VIP}:{PORT}", {})

    def collect(self, into: Path) -> None:
        """Copy the node's logs (in its tmpfs, gone with it) and its cluster status to ``into``."""
        into.mkdir(parents=True, exist_ok=True)
        sources = {
            "init.log": self.workdir / "init.log",
            "corosync.out": self.workdir / "corosync.out",
            "pacemakerd.out": self.workdir / "pacemakerd.out",
            "pacemaker.log": self.file("/var/log/pacemaker/pacemaker.log"),
            "corosync.log": self.file("/var/log/corosync/corosync.log"),
            "ldirector.log": self.file(NODE_LOG),
        }
        for name, path in sources.items():
            with contextlib.suppress(OSError):
                (into / name).write_bytes(path.read_bytes())
        with contextlib.suppress(OSError, AssertionError, subprocess.SubprocessError):
            status = self.run("crm_mon", "-1", "-r", "-A", "-f", "-t", check=False, timeout=120)
            (into / "crm_mon.txt").write_text(status)

    def tail(self) -> str:
        texts = []
        for path in (
            self.workdir / "init.log",
            self.file("/var/log/pacemaker/pacemaker.log"),
            self.file(NODE_LOG),
        ):
            with contextlib.suppress(OSError):
                texts.append(f"--- {path}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(texts)

    def stop(self) -> None:
        """Everything in the node at once: unshare's death takes its PID 1 (--kill-child) and
        so the rest of the PID namespace. SIGKILL, as unshare ignores SIGTERM while it waits."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
