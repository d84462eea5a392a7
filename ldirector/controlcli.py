"""The control socket's command line: ``status -v``/``--json``, ``disable``, ``enable``, ``drain``.

Sits in the CLI process, before ldirectord's own verbs (``ldirector.cli`` asks it first): it
parses our command lines, sends each as one request over ``ldirector.control``'s socket and
prints the reply. Plain blocking code; the daemon side lives in ``ldirector.control``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ldirector import manual
from ldirector.control import VERBS, ControlError, request, socket_path

#: The verbs this module adds to ldirectord's command line.
CLI_VERBS = ("status", *VERBS)
EXIT_USAGE = 255
CLI_USAGE = (
    "usage: ldirector [CONFIG] status [-v|--verbose] [--json]\n"
    "       ldirector [CONFIG] disable|enable VIRTUAL REAL\n"
    "       ldirector [CONFIG] drain VIRTUAL REAL [--timeout SECONDS]\n"
    "VIRTUAL: IP:PORT, tcp:IP:PORT, udp:IP:PORT, [IPv6]:PORT or fwm:MARK; REAL: IP:PORT or IP"
)


@dataclass(frozen=True, slots=True)
class CliRequest:
    """A parsed ``status -v``/``--json`` or override command line."""

    verb: str
    #: The argv to hand to ldirectord's plain ``status`` (options and config, no extras).
    plain: tuple[str, ...]
    cfgname: str
    verbose: bool = False
    json: bool = False
    virtual: str = ""
    real: str = ""
    bound: float | None = None


def parse_cli(argv: list[str]) -> CliRequest | str | None:
    """Our command lines; None for anyone else's (plain ``status`` too), a str for an error."""
    options: list[str] = []
    rest = list(argv)
    while rest and rest[0].startswith("-") and rest[0] != "-":
        options.append(rest.pop(0))
        if options[-1] == "--":
            break
    if rest and rest[0] in CLI_VERBS:
        config, verb, extra = None, rest[0], rest[1:]
    elif len(rest) >= 2 and rest[1] in CLI_VERBS:
        config, verb, extra = rest[0], rest[1], rest[2:]
    else:
        return None
    if verb == "status" and not extra:
        return None  # ldirectord's own status, untouched
    cfgname = os.path.basename(config) if config is not None else "ldirectord"
    plain = (*options, *([config] if config is not None else []), "status")
    if verb == "status":
        flags = set(extra)
        if not flags <= {"-v", "--verbose", "--json"}:
            return f"status: unknown option {sorted(flags - {'-v', '--verbose', '--json'})[0]}"
        return CliRequest(
            verb, plain, cfgname, verbose=bool(flags - {"--json"}), json="--json" in flags
        )
    bound: float | None = None
    words: list[str] = []
    it = iter(extra)
    for word in it:
        if word == "--timeout" or word.startswith("--timeout="):
            if verb != "drain":
                return f"{verb}: --timeout applies to drain only"
            value = word.partition("=")[2] if "=" in word else next(it, "")
            try:
                bound = float(value)
            except ValueError:
                return f"drain: --timeout wants seconds, not {value!r}"
            if not 0 <= bound <= 7 * 86400:
                return "drain: --timeout must be 0..604800 seconds"
        elif word.startswith("-") and word != "-":
            return f"{verb}: unknown option {word}"
        else:
            words.append(word)
    if len(words) != 2:
        return f"{verb} needs VIRTUAL and REAL"
    try:
        manual.parse_virtual(words[0])
        manual.parse_real(words[1])
    except manual.ManualError as exc:
        return f"{verb}: {exc}"
    return CliRequest(verb, plain, cfgname, virtual=words[0], real=words[1], bound=bound)


def cli_main(
    argv: list[str],
    *,
    plain_status: Callable[..., int],
    out: TextIO,
    err: TextIO,
    directory: Path | None = None,
) -> int | None:
    """Run ``status -v``/``--json``, ``disable``, ``enable`` or ``drain``; None if not ours.

    ``plain_status(argv, out=..., err=...)`` is ldirectord's ``status`` (``commands.main``):
    its message and exit code come first and are kept; the detail follows when it is running.
    """
    parsed = parse_cli(argv)
    if parsed is None:
        return None
    if isinstance(parsed, str):
        err.write(f"ldirector: {parsed}\n{CLI_USAGE}\n")
        return EXIT_USAGE
    path = socket_path(parsed.cfgname, directory)
    if parsed.verb == "status":
        # With --json, stdout carries only JSON: ldirectord's stopped line moves to stderr.
        code = plain_status(list(parsed.plain), out=err if parsed.json else out, err=err)
        if code != 0:
            return code
        try:
            reply = request(path, {"cmd": "status"})
        except ControlError as exc:
            err.write(f"ldirector: {exc}\n")
            return 1
        doc = reply.get("status")
        if parsed.json:
            out.write(json.dumps(doc, indent=2) + "\n")
        else:
            out.write(render_json_text(doc))
        return 0
    message: dict[str, Any] = {"cmd": parsed.verb, "virtual": parsed.virtual, "real": parsed.real}
    if parsed.bound is not None:
        message["timeout"] = parsed.bound
    try:
        reply = request(path, message)
    except ControlError as exc:
        err.write(f"ldirector: {parsed.verb}: {exc}\n")
        return 1
    out.write(f"{reply.get('message', 'done')}\n")
    return 0


def render_json_text(doc: object) -> str:
    """``status -v`` text from the JSON document the daemon sent (the client has no model)."""
    from ldirector.statusrender import from_json, render_text

    try:
        return render_text(from_json(doc))
    except (KeyError, TypeError, ValueError):
        return "ldirector: the daemon sent a status this version cannot read\n"
