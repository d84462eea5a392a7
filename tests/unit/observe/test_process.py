"""The process's own figures: read from a /proc, and left out where /proc has nothing."""

from __future__ import annotations

import os
from pathlib import Path

from ldirector.observe.exposition import Format, write
from ldirector.observe.process import families


def figures(proc: Path) -> dict[str, str]:
    lines = write(families(proc), Format.TEXT).decode().splitlines()
    return dict(line.split(" ", 1) for line in lines if not line.startswith("#"))


def test_figures_from_a_proc_directory(tmp_path: Path) -> None:
    (tmp_path / "self" / "fd").mkdir(parents=True)
    for fd in ("0", "1", "2", "7"):
        (tmp_path / "self" / "fd" / fd).touch()
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    # The command name may hold spaces and parentheses; fields are counted after the last ")".
    after = ["S"] + ["0"] * 10 + [str(3 * ticks), str(ticks)] + ["0"] * 6
    after += [str(50 * ticks), "123456789", "1000"]
    (tmp_path / "self" / "stat").write_text(f"4242 (ld (x) y) {' '.join(after)} 0 0\n")
    (tmp_path / "stat").write_text("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n")
    found = figures(tmp_path)
    assert float(found["process_cpu_seconds_total"]) == 4.0
    assert found["process_virtual_memory_bytes"] == "123456789"
    assert found["process_resident_memory_bytes"] == str(1000 * page)
    assert float(found["process_start_time_seconds"]) == 1_700_000_050.0
    assert found["process_open_fds"] == "4"


def test_without_proc_only_what_the_process_knows(tmp_path: Path) -> None:
    found = figures(tmp_path / "absent")
    assert set(found) <= {"process_cpu_seconds_total", "process_max_fds"}
    assert float(found["process_cpu_seconds_total"]) > 0


def test_a_damaged_stat_file_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "self" / "stat").write_text("4242 (ld) S 1 2\n")
    found = figures(tmp_path)
    assert "process_resident_memory_bytes" not in found
    assert "process_cpu_seconds_total" in found
