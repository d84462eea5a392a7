"""One grammar, one verb table: suggestions, per-verb help, the usage drawn from the table."""

from __future__ import annotations

import io
from collections.abc import Sequence

import pytest

from ldirector.cli import grammar, main
from ldirector.cli.grammar import Invocation, Verb


def run(argv: Sequence[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("argv", "guess"),
    [
        (["stauts"], "ldirector: unknown verb 'stauts'; did you mean 'status'?"),
        (["web.cf", "stpo"], "ldirector: unknown verb 'stpo'; did you mean 'stop'?"),
        (["-d", "drian", "127.0.0.1:80", "127.0.0.2"], "did you mean 'drain'?"),
        (["reloda", "-v"], "did you mean 'reload'?"),
        (["web.cf", "frobnicate"], "ldirector: unknown verb 'frobnicate'"),
    ],
)
def test_a_mistyped_verb_gets_a_suggestion(argv: list[str], guess: str) -> None:
    code, out, err = run(argv)
    assert (code, out) == (255, "")
    assert guess in err.splitlines()[0]
    assert "usage: ldirector" in err


@pytest.mark.parametrize("verb", list(Verb))
def test_every_verb_has_its_own_help(verb: Verb) -> None:
    syntax = main.TABLE[verb].syntax
    for argv in ([verb, "--help"], ["web.cf", verb, "-h"]):
        code, out, err = run(argv)
        assert (code, err) == (0, "")
        first = out.splitlines()[0]
        assert first == f"usage: ldirector [-d|--debug] [--] [CONFIG] {syntax.synopsis(verb)}"
        assert syntax.help in out
        assert all(", ".join(option.names) in out for option in syntax.options)


def test_the_table_has_a_row_for_every_verb() -> None:
    assert list(main.TABLE) == list(Verb)
    assert {verb: row.syntax for verb, row in main.TABLE.items()} == main.SYNTAX


def test_the_usage_is_drawn_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    text = grammar.usage("ldirector", main.SYNTAX)
    for verb in Verb:
        assert f"  {main.SYNTAX[verb].synopsis(verb)} " in text
        assert main.SYNTAX[verb].help in text
    assert "VERB: start|stop|restart|try-restart|reload|force-reload|status|check|" in text
    # A row's words are the usage's words.
    row = main.TABLE[Verb.DRAIN]
    renamed = grammar.Syntax("let it go gently", row.syntax.options, row.syntax.operands)
    monkeypatch.setitem(main.SYNTAX, Verb.DRAIN, renamed)
    assert "let it go gently" in run(["--help"])[1]
    # A verb without a row cannot be shown (nor parsed).
    monkeypatch.delitem(main.SYNTAX, Verb.DRAIN)
    with pytest.raises(KeyError):
        grammar.usage("ldirector", main.SYNTAX)


def test_ldirectords_name_gets_ldirectords_usage() -> None:
    assert grammar.program_name("/usr/sbin/ldirectord") == "ldirectord"
    assert grammar.program_name("/usr/bin/ldirector") == "ldirector"
    text = grammar.usage("ldirectord", main.SYNTAX)
    assert text.startswith("Usage: ldirectord [-d|--debug] [--] [CONFIG] VERB")
    assert "start|stop|restart|try-restart|reload|force-reload|status" in text


def test_one_version_text() -> None:
    for flag in ("-v", "--version"):
        assert run([flag])[:2] == (0, grammar.version_text())
    text = grammar.version_text()
    assert text.startswith("ldirector ") and "(Linux Director v" in text


@pytest.mark.parametrize(
    ("argv", "config", "verb"),
    [
        (["start"], None, Verb.START),
        (["-d", "--", "web.cf", "stop"], "web.cf", Verb.STOP),
        (["check", "--json", "web.cf"], "web.cf", Verb.CHECK),
        (["/etc/ha.d/web.cf", "status", "-v"], "/etc/ha.d/web.cf", Verb.STATUS),
    ],
)
def test_config_and_verb(argv: list[str], config: str | None, verb: Verb) -> None:
    inv = grammar.parse(argv, main.SYNTAX)
    assert isinstance(inv, Invocation)
    assert (inv.config_arg, inv.verb) == (config, verb)


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["a.cf", "b.cf", "start"], "one config at most before the verb"),
        (["start", "now"], "start: unexpected now"),
        (["status", "--json=yes"], "status: --json takes no value"),
        (["drain", "127.0.0.1:80", "127.0.0.2", "--timeout"], "drain: --timeout needs SECONDS"),
        (["check", "a.cf", "b.cf"], "check: one config at most"),
    ],
)
def test_refused_forms(argv: list[str], error: str) -> None:
    with pytest.raises(grammar.UsageError, match=error):
        grammar.parse(argv, main.SYNTAX)


def test_which_config_a_command_line_runs() -> None:
    web = grammar.runs_config("web.cf")
    assert web(["/etc/ha.d/web.cf", "start"]) and web(["-d", "web.cf", "restart"])
    assert not web(["other.cf", "start"]) and not web(["start"]) and not web(["--help"])
    assert grammar.runs_config("ldirectord")(["start"])
    assert not web(["web.cf"]) and not web([])


def test_shadow_instance_has_names_of_its_own() -> None:
    inv = grammar.parse(["--shadow", "-d", "/etc/ha.d/web.cf", "start"], main.SYNTAX)
    assert isinstance(inv, Invocation)
    assert (inv.shadow, inv.debug, inv.verb, inv.cfgname) == (
        True,
        True,
        Verb.START,
        "web.cf.shadow",
    )
    live = grammar.parse(["web.cf", "start"], main.SYNTAX)
    assert isinstance(live, Invocation) and (live.shadow, live.cfgname) == (False, "web.cf")
    # Each instance's pid check tells its own process from the other's.
    shadow = grammar.runs_config("web.cf.shadow")
    assert shadow(["--shadow", "web.cf", "start"]) and not shadow(["web.cf", "start"])
    assert not grammar.runs_config("web.cf")(["--shadow", "web.cf", "start"])
