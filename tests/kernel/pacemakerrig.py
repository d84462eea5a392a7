"""The Pacemaker suite's rig: the pair network of pairrig, with Pacemaker moving the addresses.

Each director's network namespace is a Corosync/Pacemaker node (tests/kernel/pacemakernode.py):
Debian's corosync (knet over the directors' eth0 addresses) and pacemakerd. Both nodes start
with the shipped ``contrib/pacemaker/crm.txt`` in their CIB, unchanged except for what a lab
needs and a production cluster must not have (tests/kernel/pacemakerlab.py): ldirector runs as
a clone through ``contrib/ocf/ldirector`` with ``examples/pair.cf`` as /etc/ha.d/ldirectord.cf
on each node, and one IPaddr2 group moves the VIP and the reals' gateway. The reals and the
client are pairrig's.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from tests.support.crmxml import canonical

from .pacemakerlab import cib
from .pacemakernode import WAIT, Node
from .pairrig import (
    ARTIFACTS,
    DIRECTORS,
    GW,
    PORT,
    REAL_ADDR,
    REALS,
    ROOT,
    VIP,
    lab,
    record,
)

#: Each node's logs and cluster status, copied here when the cluster is taken down.
LOGS = ARTIFACTS / "pacemaker"
#: The program the agent runs: the tree under test's ldirector (the venv's console script may
#: import another checkout, an editable install). scripts/vm-test compiled the tree's bytecode
#: before the guest booted, so no run compiles. Set here, not in the environment, as nothing
#: passes it through Pacemaker to the agent.
LDIRECTOR_WRAPPER = """#!/bin/sh
PYTHONPATH={root} exec {python} -m ldirector "$@"
"""
#: Bounds under emulation; waits end as soon as the state is reached.
CLUSTER_WAIT = 600.0


class Cluster:
    """The two nodes; built by :func:`running`."""

    def __init__(self, workdir: Path) -> None:
        self.program = workdir / "ldirector"
        self.program.parent.mkdir(parents=True, exist_ok=True)
        self.program.write_text(LDIRECTOR_WRAPPER.format(root=ROOT, python=sys.executable))
        self.program.chmod(0o755)
        #: The CIB both nodes start with: the lab's crm.txt.
        self.seed = cib(self.program)
        self.nodes = {n: Node(n, workdir / n, self.seed) for n in DIRECTORS}

    def collect(self) -> None:
        """Every node's logs and status into artifacts/kernel/pacemaker/NODE/."""
        for name, node in self.nodes.items():
            if node.process is not None and node.process.poll() is None:
                node.collect(LOGS / name)

    def crm_mon(self, via: str = "director1") -> str:
        return self.nodes[via].run("crm_mon", "-1", "-r", check=False)

    def wait_online(self, timeout: float = CLUSTER_WAIT) -> float:
        """Both nodes online with a DC elected, seen from each; returns when."""
        deadline = time.monotonic() + timeout
        want = f"Online: [ {' '.join(DIRECTORS)} ]"
        for name in DIRECTORS:
            while True:
                status = self.crm_mon(name)
                if want in status and "Current DC: NONE" not in status:
                    break
                assert time.monotonic() < deadline, f"{name}: cluster not up:\n{status}"
                time.sleep(2.0)
        return time.monotonic()

    def check_configuration(self) -> None:
        """The live CIB holds the seeded configuration, as Pacemaker took it from the file:
        its resources, constraints and defaults unchanged, its cluster properties among the
        ones the controller adds (its version, the cluster's name)."""
        text = self.nodes["director1"].run("cibadmin", "-Q", "-o", "configuration")
        live = ET.fromstring(text)  # noqa: S314 (our own cluster's CIB)
        seed = ET.fromstring(self.seed).find("configuration")  # noqa: S314
        assert seed is not None
        for tag in ("resources", "constraints", "rsc_defaults", "op_defaults"):
            ours, theirs = seed.find(tag), live.find(tag)
            assert ours is not None and theirs is not None, f"no {tag} in\n{text}"
            assert canonical(ours) == canonical(theirs), f"{tag} changed:\n{text}"
        pairs = {(p.get("name"), p.get("value")) for p in live.iter("nvpair")}
        missing = {(p.get("name"), p.get("value")) for p in seed.iter("nvpair")} - pairs
        assert not missing, f"properties not taken: {missing}\n{text}"

    def holder(self, address: str = VIP) -> str | None:
        """The director that has ``address`` now, if any."""
        for name, node in self.nodes.items():
            if address in node.addresses():
                return name
        return None

    def announced(self, name: str) -> bool:
        """Whether both reals' neighbour entries for the gateway name ``name``'s eth0: IPaddr2
        announces a moved address in the background (send_arp), after the address is up; until
        then the reals send their replies to the old node."""
        want = link_address(DIRECTORS[name], "eth0")
        return all(neighbour(ns, GW) == want for ns in REALS.values())

    def wait_tables(self, names: list[str], timeout: float = CLUSTER_WAIT) -> None:
        """ldirector's table routes the VIP to both reals on each of ``names``."""
        want = {f"{a}:{PORT}" for a in REAL_ADDR.values()}
        deadline = time.monotonic() + timeout
        for name in names:
            node = self.nodes[name]
            while {r for r, w in node.table().items() if w > 0} != want:
                assert time.monotonic() < deadline, (
                    f"{name}: table {node.table()}\n{self.crm_mon()}\n{node.tail()}"
                )
                time.sleep(1.0)

    def wait_running(self, timeout: float = CLUSTER_WAIT) -> str:
        """ldirector's table complete on both nodes and the VIP and gateway on one; its name."""
        deadline = time.monotonic() + timeout
        self.wait_tables(list(self.nodes), timeout)
        while (vip := self.holder(VIP)) is None or self.holder(GW) != vip:
            assert time.monotonic() < deadline, f"addresses not up:\n{self.crm_mon()}"
            time.sleep(0.5)
        return vip

    def wait_idle(self, timeout: float = CLUSTER_WAIT) -> None:
        """Until the cluster has nothing left to do: its DC's controller is idle. A standby
        while a transition still runs (an ldirector start's last status, say) would wait for
        the actions already under way before the cluster plans the move."""
        node = self.nodes["director1"]
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(r"Designated Controller is: (\S+)", node.run("crmadmin", "-D"))
            if found and "S_IDLE" in node.run("crmadmin", "-S", found[1], check=False):
                return
            assert time.monotonic() < deadline, f"the cluster stays busy:\n{self.crm_mon()}"
            time.sleep(1.0)

    def standby(self, name: str, on: bool) -> None:
        """``crm node standby``/``online`` as crmsh does it: the node's standby attribute, set
        with crm_attribute (crm_standby, a bash script around it, takes seconds longer here)."""
        value = "on" if on else "off"
        self.nodes[name].run(
            "crm_attribute", "-t", "nodes", "-N", name, "-n", "standby", "-v", value
        )


def link_address(ns: str, dev: str) -> str:
    """The MAC address of ``dev`` in namespace ``ns``."""
    out = subprocess.run(
        ["ip", "-n", ns, "-o", "link", "show", dev], capture_output=True, text=True, timeout=WAIT
    ).stdout
    found = re.search(r"link/ether (\S+)", out)
    assert found, f"{ns} {dev}: {out}"
    return found[1]


def neighbour(ns: str, address: str) -> str | None:
    """The MAC address namespace ``ns`` sends to for ``address``, if it has one."""
    out = subprocess.run(
        ["ip", "-n", ns, "neigh", "show", address], capture_output=True, text=True, timeout=WAIT
    ).stdout
    found = re.search(r"lladdr (\S+)", out)
    return found[1] if found else None


@contextlib.contextmanager
def running(workdir: Path) -> Iterator[Cluster]:
    """Network, reals, both nodes up with the lab's configuration, its resources running."""
    with contextlib.ExitStack() as stack:
        lab(stack)
        cluster = Cluster(workdir)
        began = time.monotonic()
        for node in cluster.nodes.values():
            node.start()
            stack.callback(node.stop)
        # Before the nodes stop (callbacks run last first): their logs live in their tmpfs.
        stack.callback(cluster.collect)
        online = cluster.wait_online()
        record(f"pacemaker: both nodes online after {online - began:.1f} s", "pacemaker.txt")
        cluster.check_configuration()
        cluster.wait_running()
        took = time.monotonic() - began
        record(f"pacemaker: resources running after {took:.1f} s", "pacemaker.txt")
        yield cluster
