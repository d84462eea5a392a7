"""Command line edge: ``ldirector [-d] [CONFIG] VERB`` (also installed as ``ldirectord``).

The verb table is here: each verb's syntax (options, operands, help) and its handler, one row
per ``Verb``; the grammar, the usage text and every verb's ``--help`` read it. Exit codes
follow ldirectord: 0 fine, 1 failed, 2 invalid config, 3 stopped, 255 usage error. An
expected failure is one line; a traceback only for a bug, and only with ``-d``.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO, assert_never

from ldirector.cli import control, grammar, lifecycle
from ldirector.cli.grammar import Invocation, Operand, Option, Syntax, UsageError, Verb
from ldirector.cli.lifecycle import Context, Handler
from ldirector.config import ConfigError, find_config, load
from ldirector.core import holds
from ldirector.core.text import safe_text
from ldirector.daemon.process import Loader, ServiceFactory

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_USAGE = 255


def run_check(inv: Invocation, ctx: Context) -> int:
    """``ldirector check``: load the config, print diagnostics; 0 valid, 2 invalid."""
    from ldirector.config.render import config_json, invalid_json  # check's reports only

    if inv.debug:
        logging.basicConfig(level=logging.DEBUG, format="DEBUG: %(name)s: %(message)s")
    as_json, plan = inv.flag("json"), inv.flag("plan")
    fail_if_down = inv.flag("fail_if_down")
    probe = inv.flag("probe") or fail_if_down
    path = str(ctx.config)
    try:
        config = load(path)
    except ConfigError as exc:
        for d in exc.diagnostics:
            print(d, file=ctx.err)
        if as_json:
            print(json.dumps(invalid_json(path, exc.diagnostics), indent=2), file=ctx.out)
        return EXIT_INVALID
    for d in config.warnings:
        print(d, file=ctx.err)
    if as_json and not (probe or plan):  # else --json shapes that report instead
        print(json.dumps(config_json(config), indent=2), file=ctx.out)
    elif not as_json:
        reals = sum(len(v.reals) for v in config.virtuals)
        print(
            f"{path}: OK: {len(config.virtuals)} virtual services, {reals} real servers",
            file=ctx.out,
        )
    if probe or plan:
        from ldirector.cli import check  # imports checks/ and aiohttp: only when checking

        down = check.main(config, probe=probe, plan=plan, json_output=as_json, out=ctx.out)
        return EXIT_FAILED if fail_if_down and down else EXIT_OK
    return EXIT_OK


def run_import(inv: Invocation, ctx: Context) -> int:
    """``ldirector import KEEPALIVED.CONF``: the equivalent ldirectord.cf on stdout, every
    keepalived setting it cannot carry on stderr at its FILE:LINE; 2 when anything was dropped."""
    from ldirector.config.keepalived import convert_file

    (path,) = inv.operands
    text, dropped = convert_file(path)
    if text:
        print(text, end="" if text.endswith("\n") else "\n", file=ctx.out)
    for diagnostic in dropped:
        print(diagnostic, file=ctx.err)
    return EXIT_INVALID if dropped else EXIT_OK


@dataclass(frozen=True, slots=True)
class Row:
    """One verb: what it accepts and what runs it."""

    syntax: Syntax
    run: Handler


_VIRTUAL_REAL = (Operand("VIRTUAL", holds.parse_virtual), Operand("REAL", holds.parse_real))
_JSON = Option(("--json",), "json", "")

TABLE: dict[Verb, Row] = {
    Verb.START: Row(Syntax("start the daemon (nothing to do if it runs)"), lifecycle.start),
    Verb.STOP: Row(Syntax("stop the daemon and wait for its cleanup"), lifecycle.stop),
    Verb.RESTART: Row(Syntax("check the config, then stop and start"), lifecycle.restart),
    Verb.TRY_RESTART: Row(Syntax("restart, if the daemon runs"), lifecycle.try_restart),
    Verb.RELOAD: Row(Syntax("check the config, then have the daemon reread it"), lifecycle.reload),
    Verb.FORCE_RELOAD: Row(Syntax("the same as reload"), lifecycle.reload),
    Verb.STATUS: Row(
        Syntax(
            "is the daemon running? (0 yes, 3 no, 1 stale pid file)",
            options=(
                Option(("-v", "--verbose"), "verbose", "also the daemon's view of every real"),
                Option(("--json",), "json", "that view as JSON on stdout"),
            ),
        ),
        control.status,
    ),
    Verb.CHECK: Row(
        Syntax(
            "validate the config (exit 2 if invalid)",
            options=(
                Option(("--json",), "json", "print the effective config (or report) as JSON"),
                Option(("--probe",), "probe", "also check every real server once"),
                Option(("--plan",), "plan", "also show the IPVS table it would build"),
                Option(
                    ("--fail-if-down",),
                    "fail_if_down",
                    "probe, and exit 1 if any real server's check fails",
                ),
            ),
            config_after=True,
        ),
        run_check,
    ),
    Verb.DISABLE: Row(
        Syntax(
            "take a real out now, until enable",
            operands=_VIRTUAL_REAL,
            note=control.OPERANDS_NOTE,
        ),
        control.override,
    ),
    Verb.ENABLE: Row(
        Syntax(
            "give a disabled or drained real back to its checks",
            operands=_VIRTUAL_REAL,
            note=control.OPERANDS_NOTE,
        ),
        control.override,
    ),
    Verb.DRAIN: Row(
        Syntax(
            "no new connections to a real, then take it out",
            operands=_VIRTUAL_REAL,
            options=(
                Option(
                    ("--timeout",),
                    "timeout",
                    "take it out after this long at most (up to a week)",
                    convert=control.drain_seconds,
                    metavar="SECONDS",
                ),
            ),
            note=control.OPERANDS_NOTE,
        ),
        control.override,
    ),
    Verb.IMPORT: Row(
        Syntax(
            "convert a keepalived.conf to ldirectord.cf on stdout (2: settings dropped)",
            operands=(Operand("KEEPALIVED.CONF"),),
        ),
        run_import,
    ),
}
SYNTAX: dict[Verb, Syntax] = {verb: row.syntax for verb, row in TABLE.items()}


def main(
    argv: Sequence[str] | None = None,
    *,
    load: Loader | None = None,
    service: ServiceFactory | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run one command line; returns the process exit code.

    ``load`` and ``service`` replace the config loader and the daemon body (the test driver
    runs the real command line around a stand-in body this way).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    prog = grammar.program_name(sys.argv[0] if sys.argv else "")
    args = list(sys.argv[1:] if argv is None else argv)
    debug = False
    try:
        match grammar.parse(args, SYNTAX):
            case grammar.Help(verb=verb):
                out.write(grammar.usage(prog, SYNTAX, verb))
                return EXIT_OK
            case grammar.Version():
                out.write(grammar.version_text())
                return EXIT_OK
            case Invocation() as inv:
                debug = inv.debug
                ctx = Context(
                    out,
                    err,
                    config=find_config(inv.config_arg),
                    load=load or lifecycle.load_settings,
                    service=service or lifecycle.default_service,
                )
                return TABLE[inv.verb].run(inv, ctx)
            case never:
                assert_never(never)
    except UsageError as exc:
        # The words quoted back are the operator's own, but may hold escape sequences.
        err.write(f"{prog}: {safe_text(str(exc))}\n{grammar.usage(prog, SYNTAX, exc.verb)}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ldirector check --json | head`: the reader left, nothing to say
        return EXIT_FAILED
    except OSError as exc:  # the host refused something (permissions, space): its one line
        err.write(f"{prog}: {exc}\n")
        return EXIT_FAILED
    except Exception as exc:  # a bug: one line, and with -d the traceback to report it with
        err.write(f"{prog}: internal error: {type(exc).__name__}: {exc}\n")
        if debug:
            traceback.print_exc(file=err)
        return EXIT_FAILED
