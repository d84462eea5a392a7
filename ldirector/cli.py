"""Command line edge: ``ldirector [-d] [CONFIG] COMMAND`` (also installed as ``ldirectord``).

The only config-layer I/O is here: printing diagnostics and the ``--json`` model. Commands live in
one table so later issues add ``start``/``stop``/``status``... by adding rows. Exit codes follow
ldirectord: 0 fine, 2 invalid config, 255 usage error; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from ldirector import __version__
from ldirector.config import Config, ConfigError, find_config, load
from ldirector.config.render import config_json, invalid_json

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_USAGE = 255

#: ldirectord's commands that later issues implement; they are recognised now so that usage
#: errors and "not available yet" are told apart.
LATER = ("start", "stop", "restart", "try-restart", "reload", "force-reload", "status")


class UsageError(Exception):
    """Bad command line: printed with the usage, exit 255 as ldirectord does."""


class NotAvailable(Exception):
    """A command or flag that a later release adds."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True, slots=True)
class Command:
    """One row of the command table: how to parse its flags and how to run it."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        # status -v/--json, disable, enable, drain: the control socket (issue 7).
        from ldirector import commands, controlcli

        code = controlcli.cli_main(args, plain_status=commands.main, out=sys.stdout, err=sys.stderr)
        if code is not None:
            return code
        return _main(args)
    except UsageError as exc:
        print(f"ldirector: {exc}\n{USAGE}", file=sys.stderr)
        return EXIT_USAGE
    except NotAvailable as exc:
        print(f"ldirector: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ldirector check --json | head`: the reader left, nothing to say
        return EXIT_FAILED
    except Exception as exc:  # the promise is one line, never a traceback
        print(f"ldirector: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


USAGE = (
    "usage: ldirector [-d|--debug] [CONFIG] COMMAND [OPTIONS]\n"
    "       ldirector COMMAND [OPTIONS] [CONFIG]\n"
    "       ldirector -h|--help|-v|--version\n"
    "commands: check [--json] [--probe] [--plan]; " + ", ".join(LATER) + "\n"
    "          status -v|--json; disable|enable VIRTUAL REAL; drain VIRTUAL REAL [--timeout S]"
)


def _main(argv: list[str]) -> int:
    top = _Parser(prog="ldirector", add_help=False, usage=USAGE)
    top.add_argument("-d", "--debug", action="store_true")
    top.add_argument("-h", "-?", "--help", action="store_true")
    top.add_argument("-v", "--version", action="store_true")
    top.add_argument("rest", nargs=argparse.REMAINDER)
    opts = top.parse_args(argv)
    if opts.help:
        print(USAGE)
        return EXIT_OK
    if opts.version:
        print(f"ldirector {__version__} (compatible with Linux Director v1.186-ha)")
        return EXIT_OK
    rest: list[str] = opts.rest
    if rest and rest[0] == "--":
        rest = rest[1:]
    config: str | None = None
    if rest and _known(rest[0]):
        name, more = rest[0], rest[1:]
    elif len(rest) >= 2 and _known(rest[1]):
        config, name, more = rest[0], rest[1], rest[2:]
    elif not rest:
        raise UsageError("no command given")
    else:
        raise UsageError(f"unknown command: {' '.join(rest[:2])}")
    if name in LATER:
        # ldirectord's verbs: their own grammar, messages and exit codes (ldirector.commands).
        from ldirector import commands

        return commands.main(argv)
    command = COMMANDS[name]
    sub = _Parser(prog=f"ldirector {name}", description=command.help)
    sub.add_argument("-d", "--debug", action="store_true", help="debug logging on stderr")
    command.configure(sub)
    ns = sub.parse_args(more)
    if getattr(ns, "config", None) is not None and config is not None:
        raise UsageError(f"config given twice: {config} and {ns.config}")
    ns.config = ns.config if getattr(ns, "config", None) is not None else config
    ns.debug = ns.debug or opts.debug
    if ns.debug:
        logging.basicConfig(level=logging.DEBUG, format="DEBUG: %(name)s: %(message)s")
    return command.run(ns)


def _known(word: str) -> bool:
    return word in COMMANDS or word in LATER


# --- check ---------------------------------------------------------------------------------


def _configure_check(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", help="config name or path (default ldirectord.cf)")
    p.add_argument("--json", action="store_true", help="print the effective config as JSON")
    p.add_argument("--probe", action="store_true", help="also probe every real server once")
    p.add_argument("--plan", action="store_true", help="also show the IPVS table it would build")


def run_check(ns: argparse.Namespace) -> int:
    """``ldirector check``: load the config, print diagnostics; 0 valid, 2 invalid."""
    path = str(find_config(ns.config))
    try:
        config = load(path)
    except ConfigError as exc:
        for d in exc.diagnostics:
            print(d, file=sys.stderr)
        if ns.json:
            print(json.dumps(invalid_json(path, exc.diagnostics), indent=2))
        return EXIT_INVALID
    for d in config.warnings:
        print(d, file=sys.stderr)
    if ns.json and not (ns.probe or ns.plan):  # else --json shapes that report instead
        print(json.dumps(config_json(config), indent=2))
    elif not ns.json:
        reals = sum(len(v.reals) for v in config.virtuals)
        print(f"{path}: OK: {len(config.virtuals)} virtual services, {reals} real servers")
    if ns.json and ns.probe and ns.plan:
        return check_probe_and_plan_json(config)
    status = EXIT_OK
    if ns.probe:
        status = max(status, check_probe(config, ns))
    if ns.plan:
        status = max(status, check_plan(config, ns))
    return status


# ----- extension points for later issues: replace the bodies, keep the signatures -----


def check_probe(config: Config, ns: argparse.Namespace) -> int:
    """``check --probe``: run every real's check once and print the results."""
    from ldirector import probe  # imports checks/ and aiohttp: only when probing

    return probe.main(config, json_output=ns.json)


def check_plan(config: Config, ns: argparse.Namespace) -> int:
    """``check --plan``: print the IPVS table and the operations that would make it so."""
    from ldirector.engine import preview

    return preview.main(config, json_output=ns.json)


def check_probe_and_plan_json(config: Config) -> int:
    """``check --probe --plan --json``: both reports in one JSON document, not two."""
    import asyncio

    from ldirector import probe
    from ldirector.engine import preview

    async def both() -> dict[str, object]:
        rows = await probe.run(config)
        return {
            **probe.document(config, rows),
            **preview.document(config, await preview.collect(config)),
        }

    print(json.dumps(asyncio.run(both()), indent=2))
    return EXIT_OK


COMMANDS: dict[str, Command] = {
    "check": Command(
        "validate a config and show its effective values", _configure_check, run_check
    ),
}
