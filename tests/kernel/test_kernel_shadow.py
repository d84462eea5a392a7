"""Shadow mode and the handover against Debian's real ldirectord (the Perl program) on a real
kernel, on the fault suite's network (``shadowrig``).

- Agreement: ldirectord manages four kinds of virtual (quiescent no; quiescent yes with
  persistence; one whose only real fails so its fallback comes in) while ``ldirector --shadow``
  watches the same config. Through start, a real failing and recovering, a reload that changes
  a weight and adds a real, the fallback coming in and ldirectord's stop, the shadow reports
  agreement after each step and its divergences are all timing; the kernel table at each step
  is the one a second run of ldirectord alone, without the shadow, produces (``ipvsadm -S``).
- A real disagreement: a gate real on a port other than the virtual's with ``quiescent=yes``,
  which ldirectord leaves at weight 0 although it is healthy (its bug B11); the shadow reports
  the divergence with its cause and calls it a disagreement.
- The handover of docs/migrate.md with a client sending requests through the VIP all along
  (every reply checked): ldirectord holding a quiesced real and a fallback hands over to
  ldirector, which starts without one IPVS operation; then back to ldirectord.

The figures (the agreement's divergence report, the request counts) are printed and written to
artifacts/kernel/shadow.txt.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .faultrig import ADDR, VIP
from .faultwatch import ClientLog
from .shadowrig import (
    CFGNAME,
    RATE,
    SHADOW_NAME,
    Rig,
    Table,
    Timeline,
    director,
    rs,
    saved,
    settle,
    shadow_agrees,
    shadow_text,
    stamp,
    status,
    svc,
    virtual,
    waited,
)

pytestmark = [pytest.mark.kernel, pytest.mark.timeout(600)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "kernel"
WEB, STICKY, SPARE, GATE = svc(80), svc(81), svc(82), svc(83)
R1, R2, R3 = rs("rs1"), rs("rs2"), rs("rs3")
#: How long ldirectord may take to reach a table (its Perl starts in about 9 s).
SETTLE = 45.0


def virtuals(weight: int = 1, grown: bool = False) -> list[str]:
    """Quiescent no (the web, the client's), quiescent yes with persistence, and a virtual whose
    only real can fail so its fallback comes in."""
    web = [f"{R1} masq {weight}", f"{R2} masq 1", *([f"{R3} masq 1"] if grown else [])]
    return [
        virtual(80, web),
        virtual(81, [f"{R1} masq 1", f"{R2} masq 2"], "persistent=300", quiescent="yes"),
        virtual(82, [f"{R3} masq 1"], f"fallback={R1} masq"),
    ]


START: Table = {WEB: {R1: 1, R2: 1}, STICKY: {R1: 1, R2: 2}, SPARE: {R3: 1}}
R2_DOWN: Table = {WEB: {R1: 1}, STICKY: {R1: 1, R2: 0}, SPARE: {R3: 1}}
RELOADED: Table = {WEB: {R1: 2, R2: 1, R3: 1}, STICKY: {R1: 1, R2: 2}, SPARE: {R3: 1}}
FALLBACK: Table = {WEB: {R1: 2, R2: 1}, STICKY: {R1: 1, R2: 2}, SPARE: {R1: 1}}


def report(*lines: str) -> None:
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "shadow.txt").open("a") as stream:
        stream.write(text)


def step_line(name: str, doc: dict[str, Any]) -> str:
    shadow = doc["shadow"]
    return (
        f"step {name}: shadow agrees at {stamp(shadow['now'])};"
        f" {shadow['timings']} timing episode(s), {shadow['disagreements']} disagreement(s) so far"
    )


def toggle(name: str) -> str:
    """A kernel toggle of the director (this thread is in its namespace)."""
    return Path(f"/proc/sys/net/ipv4/vs/{name}").read_text().strip()


@pytest.fixture(scope="module")
def rig(vm: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with director(tmp_path_factory.mktemp("shadow")) as built:
        yield built


Step = tuple[str, list[str], dict[str, Any] | None]


def sequence(rig: Rig, shadow: bool, mark: Timeline) -> list[Step]:
    """The scripted sequence; per step its name, ``ipvsadm -S`` and the shadow's status."""
    rig.reset()
    rig.write_config(virtuals())
    steps: list[Step] = []
    who = "with the shadow" if shadow else "ldirectord alone"

    def step(name: str, want: Table) -> None:
        since = rig.settle(want, SETTLE)
        doc = shadow_agrees(since) if shadow else None
        steps.append((name, saved(), doc))
        mark(f"{who}: {name}")

    rig.ldirectord.start()
    rig.settle(START, SETTLE)
    if shadow:  # beside a running ldirectord, as docs/migrate.md runs it
        mark(f"shadow ready after {rig.shadow.start():.0f} s")
    step("start", START)
    rig.fail("rs2")
    step("rs2 fails", R2_DOWN)
    rig.recover("rs2")
    step("rs2 recovers", START)
    rig.write_config(virtuals(weight=2, grown=True))
    rig.ldirectord.signal(signal.SIGHUP)  # what `ldirectord CONFIG reload` sends
    if shadow:
        rig.shadow.reload()
    step("reload: rs1 weight 2, rs3 added", RELOADED)
    rig.fail("rs3")
    step("rs3 fails: fallback in", FALLBACK)
    rig.ldirectord.stop()
    step("ldirectord stopped", FALLBACK)
    return steps


def test_shadow_agrees_with_ldirectord_and_writes_nothing(rig: Rig) -> None:
    mark = Timeline()
    quiescent_template = toggle("expire_quiescent_template")
    # ldirectord alone first, then beside the shadow: the same steps, the same tables.
    alone = sequence(rig, shadow=False, mark=mark)
    watched = sequence(rig, shadow=True, mark=mark)
    final = watched[-1][2]
    assert final is not None
    rig.shadow.stop()
    after_shadow = saved()
    would = [line for line in rig.log().splitlines() if f"|{SHADOW_NAME}|" in line]
    would = [line.split("] ", 1)[-1] for line in would if "shadow: would" in line]
    mark("shadow stopped")

    shadow = final["shadow"]
    kinds = sorted({e["kind"] for e in shadow["episodes"]})
    report(
        "== shadow agreement with Debian's ldirectord ==",
        *(step_line(name, doc) for name, _, doc in watched if doc is not None),
        "shadow status -v, at the end:",
        shadow_text(final).rstrip(),
        "what the shadow logged it would have done:",
        *(f"  {line}" for line in would),
        mark.line(),
    )
    for (name, with_shadow, _), (_, without, _) in zip(watched, alone, strict=True):
        assert with_shadow == without, f"{name}: the table differs from ldirectord's alone"
    assert after_shadow == watched[-1][1], "the shadow's stop changed the table"
    assert shadow["disagreements"] == 0, shadow_text(final)
    assert kinds in ([], ["timing"]), shadow_text(final)
    assert final["daemon"]["operations"] == 0
    assert toggle("expire_quiescent_template") == quiescent_template
    assert would, "the shadow logged nothing it would have done"


def test_shadow_reports_ldirectord_gate_port_bug(rig: Rig) -> None:
    timeline = Timeline()
    rig.reset()
    gate = virtual(83, [f"{rs('rs3', 8080)} gate 1"], quiescent="yes")
    rig.write_config([virtual(80, [f"{R1} masq 1", f"{R2} masq 1"]), gate])
    mapped = rs("rs3", 83)  # the kernel gives a gate real the virtual's port
    rig.ldirectord.start()
    # B11: its restore looks for rs3:8080, misses rs3:83 and adds it again: "already exists".
    rig.settle({WEB: {R1: 1, R2: 1}, GATE: {mapped: 0}}, SETTLE, hold=3.0)
    rig.shadow.start()
    item = f"tcp:{VIP}:83 {mapped}"
    doc: dict[str, Any] = {}

    def ongoing() -> list[dict[str, Any]]:
        return [e for e in doc["shadow"]["episodes"] if e["item"] == item and e["end"] is None]

    def caught() -> bool:
        nonlocal doc
        doc = status(SHADOW_NAME)
        return any(e["kind"] == "disagreement" for e in ongoing())

    timeline("ldirectord settled with the gate real at weight 0; shadow ready")
    waited(caught, 40, "no disagreement reported")
    timeline("disagreement reported")
    report(
        "== the shadow on ldirectord's gate-port bug (B11) ==",
        shadow_text(doc).rstrip(),
        timeline.line(),
    )
    (episode,) = ongoing()
    assert f"kernel holds {mapped} at weight 0" in episode["cause"]
    assert "ldirector: up" in episode["cause"] and "wants weight 1" in episode["cause"]
    others = [i for i in doc["shadow"]["items"] if not i["item"].startswith(f"tcp:{VIP}:83")]
    assert others and all(i["agrees"] for i in others), others
    assert not doc["shadow"]["agrees"] and doc["shadow"]["disagreements"] >= 1
    would = [line for line in rig.log().splitlines() if "shadow: would" in line]
    assert any(f"({VIP}:83)" in line and ADDR["rs3"] in line for line in would), would
    assert settle({WEB: {R1: 1, R2: 1}, GATE: {mapped: 0}}, 10, hold=1.0)  # nothing written


def checked(rounds: int) -> bool:
    """Whether the live ldirector has checked every real of every virtual ``rounds`` times."""
    doc = status(CFGNAME)
    return all(r["checks"] >= rounds for v in doc["virtuals"] for r in v["reals"])


def test_handover_and_back_with_traffic(rig: Rig) -> None:
    timeline = Timeline()
    rig.reset()
    rig.write_config(virtuals(), cleanstop="yes")  # the file as the operator had it
    rig.ldirectord.start()
    rig.settle(START, SETTLE)
    rig.shadow.start()
    shadow_agrees(time.time())
    timeline("ldirectord and the shadow agree")
    requests = ClientLog(rig.workdir / "client.out")
    client = rig.client(requests.path)
    began = time.monotonic()
    try:
        # 1. cleanstop=no, and ldirectord reloads it (every real healthy: no start flap, B12).
        mark = len(rig.log())
        rig.write_config(virtuals(), cleanstop="no")
        assert rig.ldirectord.cli("reload").returncode == 0, rig.ldirectord.outputs[-1]
        waited(lambda: "Reloading" in rig.log(mark), 30, "ldirectord did not reload")
        rig.settle(START, SETTLE, hold=3.0)
        timeline("1. ldirectord reloaded with cleanstop=no")
        # Then reals fail: ldirectord quiesces rs2 in :81, drops it from :80, and :82 falls
        # back. The handover must keep all three as they are.
        rig.fail("rs2", "rs3")
        held: Table = {WEB: {R1: 1}, STICKY: {R1: 1, R2: 0}, SPARE: {R1: 1}}
        shadow_agrees(rig.settle(held, SETTLE))
        timeline("rs2 quiesced, :82 on its fallback; the shadow agrees")
        # 2. The shadow stops (TERM: what `ldirector --shadow CONFIG stop` sends).
        rig.shadow.stop()
        # 3. ldirectord stops; its stop does not wait, the operator waits for it to be gone.
        assert rig.ldirectord.cli("stop").returncode == 0, rig.ldirectord.outputs[-1]
        rig.ldirectord.wait_gone()
        timeline("2, 3. the shadow and ldirectord stopped")
        before = saved()
        # 4. ldirector starts (as systemd starts it) and adopts the table.
        rig.live.start()
        timeline("4. ldirector ready")
        waited(lambda: checked(2), 30, "ldirector did not check every real twice")
        timeline("5. ldirector checked every real twice")
        doc = status(CFGNAME)
        at_start = doc["daemon"]["operations"]
        adopted = saved()
        matches = doc["matches"]

        # The reals come back under ldirector; then the way back.
        rig.recover("rs2", "rs3")
        rig.settle(START, SETTLE)
        timeline("rs2 and rs3 back under ldirector")
        rig.live.stop()  # TERM, as `systemctl stop ldirector` and `ldirector CONFIG stop`
        handed_back = saved()
        mark = len(rig.log())
        rig.ldirectord.start()
        rig.settle(START, SETTLE, hold=4.0)
        timeline("ldirectord has the table back")
        back = saved()
        ended = time.monotonic()
        assert requests.wait(ended, 30), "the client stopped reporting"
    finally:
        client.kill()
    sent, failed, _ = requests.tally(began, ended, [])
    lines = [line.split("] ", 1)[-1] for line in rig.log(mark).splitlines()]
    retaken = [
        line
        for line in lines
        if any(w in line for w in ("Added", "Deleted", "Restored", "Quiescent", "Purged"))
    ]
    edits = [line for line in lines if line.startswith("Changed virtual server")]
    report(
        "== handover ldirectord -> ldirector -> ldirectord, with traffic ==",
        f"requests through {VIP}:80: {sent} sent, {len(failed)} failed",
        f"IPVS operations at ldirector's start: {at_start}",
        f"IPVS operations at ldirectord's start when it took the table back: {len(edits)}"
        f" ipvsadm -E of an unchanged virtual, {len(retaken)} on reals",
        *(f"  {line}" for line in retaken),
        f"{ended - began:.0f} s of traffic; {timeline.line()}",
    )
    assert sent >= RATE * 20
    assert not failed, failed[:10]
    assert at_start == 0 and matches, doc
    assert adopted == before
    assert back == handed_back
    assert not retaken
