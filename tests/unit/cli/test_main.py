"""The new verbs through the real entry point (``ldirector.cli.main.main``), no daemon running."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldirector.cli import main


@pytest.fixture(autouse=True)
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LDIRECTOR_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("LDIRECTOR_CONTROL_DIR", str(tmp_path / "ctl"))
    (tmp_path / "run").mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "web.cf").write_text("virtual=127.0.0.100:80\n\treal=127.0.0.2:80 masq\n")


def test_status_verbose_of_a_stopped_daemon_is_ldirectords_answer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main.main(["web.cf", "status", "-v"]) == 3
    out, err = capsys.readouterr()
    assert out == "ldirectord is stopped for web.cf\n" and err == ""
    assert main.main(["web.cf", "status", "--json"]) == 3
    out, err = capsys.readouterr()
    assert out == "" and err == "ldirectord is stopped for web.cf\n"


def test_overrides_without_a_daemon_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main.main(["web.cf", "disable", "127.0.0.100:80", "127.0.0.2"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"ldirector: disable: no control socket at {tmp_path}/ctl/web.cf.sock:"
        " is the daemon running?\n"
    )


def test_bad_forms_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main.main(["drain", "www:80", "127.0.0.2"]) == 255
    _, err = capsys.readouterr()
    assert err.splitlines()[0] == (
        "ldirector: drain: not a virtual service: 'www:80' (expected IP:PORT, tcp:IP:PORT,"
        " udp:IP:PORT or fwm:MARK)"
    )


def test_import_prints_the_config_and_reports_what_it_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "keepalived.conf"
    source.write_text(
        "virtual_server 127.0.0.100 80 {\n"
        "    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n"
        "    real_server 127.0.0.2 80 {\n        weight 3\n        TCP_CHECK {\n"
        "            connect_timeout 3\n        }\n    }\n}\n"
    )
    assert main.main(["import", str(source)]) == 0
    out = capsys.readouterr().out
    assert "virtual=127.0.0.100:80" in out and "real=127.0.0.2:80 gate 3" in out
    source.write_text(source.read_text() + "vrrp_instance VI_1 {\n    state MASTER\n}\n")
    assert main.main(["import", str(source)]) == 2
    captured = capsys.readouterr()
    assert "virtual=127.0.0.100:80" in captured.out
    assert captured.err.startswith(f"{source}:12: warning: vrrp_instance")
