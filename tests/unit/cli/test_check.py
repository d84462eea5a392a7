"""``ldirector check``: config lookup, diagnostics on stderr, exit codes, --json, usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ldirector.cli import main
from ldirector.cli.grammar import Verb
from tests.support import REPO

EXAMPLE = REPO / "examples" / "ldirectord.cf"

GOOD = "checktimeout=3\nvirtual=127.0.0.1:80\n\treal=127.0.0.2:80 masq 3\n\tservice=http\n"
TRAP = "quiescent=yes\nvirtual=127.0.0.1:80\n\tpersistent=300\n\treal=127.0.0.2:80 gate\n"
BAD = 'virtual=127.0.0.1\n\trecieve="x"\nfork=maybe\n'


Writer = Callable[..., Path]
Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def cfg(tmp_path: Path) -> Writer:
    def write(text: str, name: str = "ldirectord.cf") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_config_exits_0(capsys: Capsys, cfg: Writer) -> None:
    path = cfg(GOOD)
    code, out, err = run(capsys, "check", str(path))
    assert code == 0
    assert out == f"{path}: OK: 1 virtual services, 1 real servers\n"
    assert err == ""


def test_config_before_the_command(capsys: Capsys, cfg: Writer) -> None:
    path = cfg(GOOD)
    assert run(capsys, str(path), "check")[0] == 0
    assert run(capsys, "-d", "--", str(path), "check")[0] == 0


def test_invalid_config_exits_2_with_every_diagnostic(capsys: Capsys, cfg: Writer) -> None:
    path = cfg(BAD)
    code, out, err = run(capsys, "check", str(path))
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0].startswith(f"{path}:1: error: virtual service 127.0.0.1 needs a port")
    assert lines[1] == f"{path}:2: error: unknown directive 'recieve' (did you mean 'receive'?)"
    assert lines[2] == f"{path}:3: error: fork must be 'yes' or 'no'"
    assert len(lines) == 3


def test_quiescent_persistence_trap_is_a_warning_at_the_virtual(
    capsys: Capsys, cfg: Writer
) -> None:
    path = cfg(TRAP)
    code, _, err = run(capsys, "check", str(path))
    assert code == 0
    assert err.startswith(f"{path}:2: warning: quiescent=yes with persistent")
    cured = cfg("expire_quiescent_template = yes\n" + TRAP, "cured.cf")
    assert run(capsys, "check", str(cured)) == (
        0,
        f"{cured}: OK: 1 virtual services, 1 real servers\n",
        "",
    )


def test_missing_file_and_directory_exit_2(capsys: Capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", str(tmp_path / "absent.cf"))
    assert (code, err) == (2, f"{tmp_path / 'absent.cf'}: error: config file not found\n")
    code, _, err = run(capsys, "check", str(tmp_path))
    assert (code, err) == (2, f"{tmp_path}: error: is a directory, not a config file\n")


def test_json_is_the_effective_model(capsys: Capsys, cfg: Writer) -> None:
    path = cfg(GOOD + "\tchecktimeout=4\n\treal=127.0.0.3 gate 0 l:1 u:9\n")
    code, out, _ = run(capsys, "check", "--json", str(path))
    assert code == 0
    data = json.loads(out)
    assert data["schema"] == 1 and data["valid"] is True
    (virtual,) = data["virtuals"]
    assert virtual["vid"] == "tcp:127.0.0.1:80"
    assert virtual["check"]["service"] == "http"
    assert virtual["check"]["checktimeout"] == 4.0
    assert virtual["check"]["negotiatetimeout"] == 4.0
    assert virtual["fallback"] is None
    assert [r["weight"] for r in virtual["reals"]] == [3, 0]
    assert virtual["reals"][1] == {
        "address": "127.0.0.3",
        "port": 0,
        "forward": "gate",
        "weight": 0,
        "lower": 1,
        "upper": 9,
        "request": None,
        "receive": None,
        "check_port": 80,
        "family": 4,
        "line": 6,
    }
    assert data["ipvs_sysctls"] == {}


def test_json_never_prints_secrets(capsys: Capsys, cfg: Writer) -> None:
    path = cfg(
        'virtual=127.0.0.1:1812\n\tprotocol=udp\n\tlogin="u"\n\tpasswd="hunter2"\n'
        '\tsecret="s3cr3t"\n\treal=127.0.0.2 gate\n'
    )
    code, out, _ = run(capsys, "check", "--json", str(path))
    assert code == 0
    assert "hunter2" not in out and "s3cr3t" not in out
    check = json.loads(out)["virtuals"][0]["check"]
    assert check["passwd_set"] is True and check["secret_set"] is True


def test_json_of_an_invalid_config(capsys: Capsys, cfg: Writer) -> None:
    path = cfg(BAD)
    code, out, _ = run(capsys, "check", "--json", str(path))
    assert code == 2
    data = json.loads(out)
    assert data["valid"] is False
    assert [d["line"] for d in data["diagnostics"]] == [1, 2, 3]


def test_lookup_prefers_etc_ha_d(
    capsys: Capsys, cfg: Writer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc = tmp_path / "etc-ha.d"
    etc.mkdir()
    (etc / "site.cf").write_text(GOOD)
    monkeypatch.setattr(main, "find_config", lambda arg: cli_find(arg, etc))
    code, out, _ = run(capsys, "check", "site.cf")
    assert code == 0 and out.startswith(f"{etc / 'site.cf'}: OK")


def cli_find(arg: str | None, etc: Path) -> Path:
    from ldirector.config import find_config

    return find_config(arg, (str(etc), str(etc / "conf")))


def test_default_config_name_is_ldirectord_cf(
    capsys: Capsys, cfg: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = cfg(GOOD)
    monkeypatch.chdir(path.parent)
    monkeypatch.setattr(main, "find_config", lambda arg: cli_find(arg, path.parent / "none"))
    code, out, _ = run(capsys, "check")
    assert code == 0 and out.startswith("ldirectord.cf: OK")


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["a.cf", "frobnicate"], ["check", "--bogus"], ["a.cf", "check", "b.cf"]],
)
def test_usage_errors_exit_255(capsys: Capsys, argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 255
    assert out == ""
    assert err.startswith("ldirector: ") and "usage: ldirector" in err


def test_help_and_version(capsys: Capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0 and out.startswith("usage: ldirector")
    code, out, _ = run(capsys, "-v")
    assert code == 0 and out.startswith("ldirector ")


def test_later_commands_and_flags_say_not_available(capsys: Capsys, cfg: Writer) -> None:
    # The ldirectord verbs are wired (ldirector.main.lifecycle); their contract is tested there.
    code, out, _ = run(capsys, "/nonexistent/ldirectord.cf", "status")
    assert (code, out) == (3, "ldirectord is stopped for /nonexistent/ldirectord.cf\n")


def test_check_plan_prints_the_table_it_would_build(capsys: Capsys, cfg: Writer) -> None:
    # Reads the kernel table only (a host without IPVS says so instead of listing ops).
    path = cfg(GOOD)  # its real, 127.0.0.2:80, is checked once (refused or answering)
    code, out, _ = run(capsys, "check", "--plan", str(path))
    assert code == 0
    assert "OK: 1 virtual services, 1 real servers\n" in out
    assert "-A -t 127.0.0.1:80 -s wrr\n" in out
    code, out, _ = run(capsys, "check", "--plan", "--json", str(path))
    assert code == 0
    report = json.loads(out)  # one document: the plan's
    assert report["rules"][0] == "-A -t 127.0.0.1:80 -s wrr"
    assert (report["operations"] is None) == (report["kernel_error"] is not None)
    code, out, _ = run(capsys, "check", "--probe", "--plan", "--json", str(path))
    assert code == 0
    both = json.loads(out)  # one document holding both reports, not two documents
    assert both["config"] == str(path) and both["rules"] == report["rules"]
    assert [p["real"] for p in both["probes"]] == ["127.0.0.2:80"]


def test_internal_errors_are_one_line(capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(inv: object, ctx: object) -> int:
        raise RuntimeError("kaboom")

    row = main.TABLE[Verb.CHECK]
    monkeypatch.setitem(main.TABLE, Verb.CHECK, main.Row(row.syntax, boom))
    code, _, err = run(capsys, "check")
    assert (code, err) == (1, "ldirector: internal error: RuntimeError: kaboom\n")


@pytest.mark.parametrize("script", ["ldirector", "ldirectord"])
def test_console_scripts_check_the_example(script: str) -> None:
    exe = Path(sys.executable).parent / script
    proc = subprocess.run(
        [str(exe), "check", str(EXAMPLE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "OK: 3 virtual services" in proc.stdout


def test_python_dash_m(tmp_path: Path) -> None:
    junk = tmp_path / "junk.cf"
    junk.write_bytes(bytes(range(256)) * 10)
    proc = subprocess.run(
        [sys.executable, "-m", "ldirector", "check", str(junk)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert all(": error: " in line for line in proc.stderr.splitlines())


def test_fail_if_down_exits_0_when_every_checked_real_is_up(capsys: Capsys, tmp_path: Path) -> None:
    path = tmp_path / "on.cf"
    path.write_text("virtual=127.0.0.1:80\n\treal=127.0.0.2:80 gate\n\tchecktype=on\n")
    code, out, _ = run(capsys, "check", "--fail-if-down", str(path))
    assert code == 0
    assert "127.0.0.2:80" in out  # --fail-if-down probes: the report is printed


def test_check_help_names_fail_if_down(capsys: Capsys) -> None:
    code, out, _ = run(capsys, "check", "--help")
    assert code == 0
    assert "--fail-if-down" in out and "exit 1 if any real server's check fails" in out
