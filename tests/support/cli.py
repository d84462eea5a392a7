"""Running the control-socket verbs in process, with ldirectord's plain ``status`` stood in for.

The pid file is what tells ``status`` a daemon runs; tests that serve a control socket from
an in-process engine have no such daemon, so ``plain`` answers in its place.
"""

from __future__ import annotations

import io
from pathlib import Path

from ldirector.cli import control, grammar, main
from ldirector.cli.grammar import Invocation, Verb
from ldirector.cli.lifecycle import Context, Handler


def parse(argv: list[str]) -> Invocation:
    parsed = grammar.parse(argv, main.SYNTAX)
    assert isinstance(parsed, Invocation)
    return parsed


def running(inv: Invocation, ctx: Context) -> int:
    """ldirectord's answer for a running daemon."""
    ctx.err.write(f"ldirectord for {inv.config_name} is running with pid: 1\n")
    return 0


def control_verb(
    argv: list[str], directory: Path, plain: Handler = running
) -> tuple[int, str, str]:
    """``status [-v|--json]``, ``disable``, ``enable`` or ``drain``: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    inv = parse(argv)
    ctx = Context(out, err, control_dir=directory)
    if inv.verb is Verb.STATUS:
        code = control.status(inv, ctx, plain)
    else:
        code = control.override(inv, ctx)
    return code, out.getvalue(), err.getvalue()
