"""The Pacemaker VM test's cluster configuration: the shipped crm.txt with a lab's changes.

``contrib/pacemaker/crm.txt`` is changed only where a lab must be (:func:`crm_config` says why
for each) and rendered as CIB XML by tests/support/crmxml.py, which tests/integration/
test_contrib.py holds to crmsh's own rendering of this same text. Each node starts with that
CIB, so no configuration is loaded into a running cluster: crmsh takes minutes under the
kernel suite's emulation, and a load would start a transition while the nodes still join.
Nothing here needs the VM: the host test imports it too.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import crmxml

ROOT = Path(__file__).resolve().parents[2]
CRM_TXT = ROOT / "contrib" / "pacemaker" / "crm.txt"

#: How much longer the cluster's operation timeouts are than crm.txt's (and than Pacemaker's
#: default, 20 s, for the operations crm.txt gives none), under emulation: a Python program
#: takes tens of seconds to start there when both vCPUs are busy, and an IPaddr2 action runs
#: some forty programs. A timed-out IPaddr2 start leaves the group nowhere to run.
SLOWER = 10
#: How much less often the cluster monitors than crm.txt says, under emulation: one IPaddr2
#: monitor takes seconds of CPU there, so crm.txt's 5 s would keep a vCPU busy with monitors
#: alone and slow every move. No figure of the test depends on a monitor.
SPARSER = 12
#: Cluster properties of the lab, none of which a production cluster should copy:
#: - fencing off: the VM has nothing to fence with (with stonith-enabled at its default, true,
#:   and no fencing device, Pacemaker starts no resource at all);
#: - a load threshold no load reaches: each controller throttles on the VM's load average,
#:   which counts both nodes, the client and the reals and under emulation always exceeds the
#:   default (80% of a core), so it would run one action per node at a time;
#: - dc-deadtime 2 s: how long a starting controller waits for an existing DC before electing
#:   one (20 s by default), which only delays a cluster whose nodes all start together.
LAB_PROPERTIES = "stonith-enabled=false load-threshold=1000% dc-deadtime=2s"

#: The CIB both nodes start from before crm.txt is added: empty.
SEED_CIB = """\
<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0"
     admin_epoch="0">
  <configuration>
    <crm_config/>
    <nodes/>
    <resources/>
    <constraints/>
  </configuration>
  <status/>
</cib>
"""


def crm_config(program: Path) -> str:
    """crm.txt for this lab: the ldirector program is the one under test; every operation
    timeout, the default one included, :data:`SLOWER` times longer and every monitor interval
    :data:`SPARSER` times longer; :data:`LAB_PROPERTIES` added."""
    text = re.sub(
        r"timeout=(\d+)s", lambda m: f"timeout={int(m[1]) * SLOWER}s", CRM_TXT.read_text()
    )
    text, count = re.subn(
        r"(op monitor interval=)(\d+)s", lambda m: f"{m[1]}{int(m[2]) * SPARSER}s", text
    )
    assert count >= 3, f"{CRM_TXT}: {count} monitors"
    text += f"\nop_defaults timeout={20 * SLOWER}s\n"
    marker = "params configfile=/etc/ha.d/ldirectord.cf"
    assert marker in text, f"{CRM_TXT} no longer has {marker!r}"
    text = text.replace(marker, f"{marker} ldirectord={program}")
    # One property set: crmsh refuses a second ``property`` line (a duplicate id).
    text, count = re.subn(r"^property ", f"property {LAB_PROPERTIES} ", text, count=1, flags=re.M)
    assert count == 1, f"{CRM_TXT} has no property line"
    return text


def cib(program: Path) -> str:
    """The CIB each node starts with: the seed with :func:`crm_config` loaded."""
    return crmxml.cib(crm_config(program), SEED_CIB)
