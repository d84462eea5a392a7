"""checktype=external and external-perl: real scripts written by the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from ipaddress import ip_address
from pathlib import Path

import pytest

import checks
from checks.external import MARKER, MAX_OUTPUT
from checks.types import ExternalSpec, Target, Weight
from tests.support.checkrun import assert_times_out_cleanly, run_check

TARGET = Target(
    address=ip_address("127.0.0.2"),
    port=8080,
    virtual="127.0.0.100",
    virtual_port=80,
    real_port=8080,
)


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    path.chmod(0o755)
    return str(path)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie is dead, only not yet reaped


async def gone(pid: int) -> bool:
    """Whether ``pid`` is dead within a second (SIGKILL is delivered asynchronously)."""
    for _ in range(100):
        if not alive(pid):
            return True
        await asyncio.sleep(0.01)
    return False


async def test_exit_zero_is_up_and_gets_the_four_arguments(tmp_path: Path, no_leaks: None) -> None:
    cmd = script(tmp_path, "ok.sh", '#!/bin/sh\necho "args: $*"\n')
    result = await run_check(TARGET, ExternalSpec(command=cmd), 3)
    assert (result.ok, result.reason) == (True, "exit 0: args: 127.0.0.100 80 127.0.0.2 8080")


async def test_ipv6_real_keeps_its_brackets(tmp_path: Path) -> None:
    cmd = script(tmp_path, "ok.sh", '#!/bin/sh\necho "$3"\n')
    target = Target(address=ip_address("::1"), port=80, virtual="[::1]", virtual_port=80)
    result = await run_check(target, ExternalSpec(command=cmd), 3)
    assert (result.ok, result.reason) == (True, "exit 0: [::1]")


async def test_non_zero_exit_is_down_with_its_output(tmp_path: Path, no_leaks: None) -> None:
    cmd = script(
        tmp_path, "no.sh", "#!/bin/sh\necho checking\necho 'backend said no' >&2\nexit 3\n"
    )
    result = await run_check(TARGET, ExternalSpec(command=cmd), 3)
    assert (result.ok, result.reason) == (False, "exit status 3: checking backend said no")


async def test_killed_by_a_signal(tmp_path: Path) -> None:
    cmd = script(tmp_path, "kill.sh", "#!/bin/sh\nkill -TERM $$\n")
    result = await run_check(TARGET, ExternalSpec(command=cmd), 3)
    assert (result.ok, result.reason) == (False, "killed by signal SIGTERM")


async def test_missing_or_not_executable_command(tmp_path: Path) -> None:
    missing = await run_check(TARGET, ExternalSpec(command=str(tmp_path / "nope")), 3)
    assert (missing.ok, missing.reason) == (
        False,
        f"cannot run {tmp_path / 'nope'}: no such file or directory",
    )
    plain = tmp_path / "plain.sh"
    plain.write_text("#!/bin/sh\nexit 0\n")
    denied = await run_check(TARGET, ExternalSpec(command=str(plain)), 3)
    if os.geteuid() != 0:  # root may execute anything with an x bit; this one has none
        assert denied.reason.endswith("permission denied")
    assert not denied.ok


async def test_output_is_bounded(tmp_path: Path, no_leaks: None) -> None:
    cmd = script(tmp_path, "loud.sh", "#!/bin/sh\nhead -c 5000000 /dev/zero | tr '\\0' x\nexit 1\n")
    result = await run_check(TARGET, ExternalSpec(command=cmd), 5)
    assert not result.ok
    assert result.reason.startswith("exit status 1: xxx")
    assert len(result.reason) < 400 < MAX_OUTPUT


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    cmd = script(
        tmp_path,
        "hang.sh",
        f"#!/bin/sh\nsleep 300 &\necho $$ $! > {pids}\nwait\n",
    )
    await assert_times_out_cleanly(TARGET, ExternalSpec(command=cmd), 0.5)
    for pid in map(int, pids.read_text().split()):
        assert await gone(pid), f"process {pid} survived the timeout"


async def test_leftover_children_do_not_hold_the_check(tmp_path: Path, no_leaks: None) -> None:
    pids = tmp_path / "pids"
    cmd = script(tmp_path, "fork.sh", f"#!/bin/sh\nsleep 300 &\necho $! > {pids}\nexit 0\n")
    started = time.monotonic()
    result = await run_check(TARGET, ExternalSpec(command=cmd), 3)
    assert (result.ok, time.monotonic() - started < 2) == (True, True)
    assert await gone(int(pids.read_text()))


DETACHED = """#!/bin/sh
# A child in a session of its own, out of the command's process group, holding its stdout.
setsid sleep 300 &
echo $! > {pids}
# Until setsid has run, the child is still in the group; wait for it to leave.
i=0
while [ "$(ps -o sid= -p $!)" -eq "$(ps -o sid= -p $$)" ] && [ $i -lt 200 ]; do
    sleep 0.01; i=$((i + 1))
done
echo checked
exit 0
"""


async def test_a_detached_child_holding_stdout_is_killed(tmp_path: Path, no_leaks: None) -> None:
    pids = tmp_path / "pids"
    cmd = script(tmp_path, "detach.sh", DETACHED.format(pids=pids))
    started = time.monotonic()
    result = await run_check(TARGET, ExternalSpec(command=cmd), 3)
    # Judged by the exit status at once, not when the child lets go of the output.
    assert (result.ok, result.reason) == (True, "exit 0: checked")
    assert time.monotonic() - started < 2
    assert await gone(int(pids.read_text())), "the detached child outlived the check"


async def test_a_detached_child_is_killed_on_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    body = DETACHED.format(pids=pids).replace("exit 0", "exec sleep 300")
    cmd = script(tmp_path, "detach-hang.sh", body)
    await assert_times_out_cleanly(TARGET, ExternalSpec(command=cmd), 1)
    assert await gone(int(pids.read_text())), "the detached child outlived the timeout"


async def test_commands_run_with_the_marker_in_their_environment(tmp_path: Path) -> None:
    cmd = script(tmp_path, "env.sh", f'#!/bin/sh\necho "${MARKER}"\n')
    results = [await run_check(TARGET, ExternalSpec(command=cmd), 3) for _ in range(3)]
    assert all(r.ok for r in results)
    # A fresh random token for every run: no run can kill another run's processes.
    tokens = {r.reason.removeprefix("exit 0: ") for r in results}
    assert len(tokens) == 3 and all(len(t) == 32 for t in tokens)


async def test_cancellation_kills_the_group(tmp_path: Path, no_leaks: None) -> None:
    pids = tmp_path / "pids"
    cmd = script(tmp_path, "hang.sh", f"#!/bin/sh\necho $$ > {pids}\nexec sleep 300\n")
    task = asyncio.create_task(checks.run(TARGET, ExternalSpec(command=cmd)))
    while not pids.exists() or not pids.read_text():  # noqa: ASYNC110 - another process writes it
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await gone(int(pids.read_text()))


@pytest.fixture
def perl() -> str:
    found = shutil.which("perl")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("perl is not installed")
        pytest.skip("perl is not installed")
    return found


async def test_perl_script_without_exit_is_up(tmp_path: Path, perl: str) -> None:
    path = tmp_path / "check.pl"
    path.write_text('print "perl saw @ARGV\\n";\n')  # not executable: perl runs it
    result = await run_check(TARGET, ExternalSpec(command=str(path), perl=True), 3)
    assert (result.ok, result.reason) == (True, "exit 0: perl saw 127.0.0.100 80 127.0.0.2 8080")


async def test_perl_die_and_exit_are_down(tmp_path: Path, perl: str) -> None:
    dies = tmp_path / "dies.pl"
    dies.write_text('die "real is sick\\n";\n')
    result = await run_check(TARGET, ExternalSpec(command=str(dies), perl=True), 3)
    assert (result.ok, result.reason) == (False, "exit status 255: real is sick")
    exits = tmp_path / "exits.pl"
    exits.write_text("exit(2);\n")
    result = await run_check(TARGET, ExternalSpec(command=str(exits), perl=True), 3)
    assert (result.ok, result.reason) == (False, "exit status 2")


async def test_perl_hang_times_out(tmp_path: Path, perl: str) -> None:
    hang = tmp_path / "hang.pl"
    hang.write_text("sleep 300;\n")
    await assert_times_out_cleanly(TARGET, ExternalSpec(command=str(hang), perl=True), 0.3)


async def test_killed_by_a_real_time_signal(tmp_path: Path) -> None:
    cmd = script(tmp_path, "rt.sh", "#!/bin/sh\nkill -s 40 $$\nsleep 1\n")
    result = await run_check(TARGET, ExternalSpec(command=cmd), 3)
    assert (result.ok, result.reason) == (False, "killed by signal 40")


@pytest.mark.parametrize(
    ("status", "ok", "weight"),
    [
        (0, True, None),
        (1, False, None),
        (2, True, 0),
        (3, True, 1),
        (12, True, 10),
        (255, True, 253),
    ],
)
async def test_dynamic_weight_follows_every_exit_status_band(
    tmp_path: Path, status: int, ok: bool, weight: int | None
) -> None:
    """keepalived's misc_dynamic: 0 up at the configured weight, 1 down, 2-255 weight status-2."""
    cmd = script(tmp_path, "weigh.sh", f"#!/bin/sh\nexit {status}\n")
    result = await run_check(TARGET, ExternalSpec(command=cmd, dynamic=True), 3)
    assert result.ok is ok, result.reason
    assert result.weight == (None if weight is None else Weight(weight))
    if weight is not None:
        assert result.reason == f"exit status {status}: weight {weight}"


async def test_without_dynamicweight_a_weight_status_is_down(tmp_path: Path) -> None:
    cmd = script(tmp_path, "weigh.sh", "#!/bin/sh\nexit 12\n")
    result = await run_check(TARGET, ExternalSpec(command=cmd), 3)
    assert (result.ok, result.weight, result.reason) == (False, None, "exit status 12")


async def test_a_killed_dynamic_command_is_down_not_a_weight(tmp_path: Path) -> None:
    cmd = script(tmp_path, "die.sh", "#!/bin/sh\nkill -9 $$\n")
    result = await run_check(TARGET, ExternalSpec(command=cmd, dynamic=True), 3)
    assert (result.ok, result.weight) == (False, None)
    assert result.reason == "killed by signal SIGKILL"
