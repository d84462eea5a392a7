"""The verbs that talk to a running daemon: ``status -v``/``--json``, ``disable``, ``enable``,
``drain``.

Each sends one request over the control socket (``ldirector.control.protocol``) and prints the
reply. Plain blocking code in the CLI process; the daemon side is ``ldirector.control.server``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ldirector.cli import lifecycle
from ldirector.cli.grammar import Invocation
from ldirector.cli.lifecycle import Context
from ldirector.control import protocol
from ldirector.control.protocol import MAX_DRAIN, ControlError, request, socket_path

#: How the operands of disable, enable and drain are written.
OPERANDS_NOTE = (
    "VIRTUAL: IP:PORT, tcp:IP:PORT, udp:IP:PORT, [IPv6]:PORT or fwm:MARK; REAL: IP:PORT or IP"
)


def drain_seconds(text: str) -> float:
    """``drain --timeout``'s value: seconds, within the bound the daemon accepts."""
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"wants seconds, not {text!r}") from None
    if not 0 <= seconds <= MAX_DRAIN:
        raise ValueError(f"must be 0..{MAX_DRAIN} seconds")
    return seconds


def status(inv: Invocation, ctx: Context, plain: lifecycle.Handler = lifecycle.status) -> int:
    """``status``; with ``-v``/``--json`` the daemon's own view follows ldirectord's answer.

    ``plain`` is ldirectord's ``status``: its message and exit code come first and are kept.
    """
    as_json = inv.flag("json")
    if not (as_json or inv.flag("verbose")):
        return plain(inv, ctx)
    # With --json, stdout carries only JSON: ldirectord's stopped line moves to stderr.
    code = plain(inv, dataclasses.replace(ctx, out=ctx.err) if as_json else ctx)
    if code != 0:
        return code
    try:
        reply = request(socket_path(inv.cfgname, ctx.control_dir), {"cmd": protocol.Verb.STATUS})
    except ControlError as exc:
        ctx.err.write(f"ldirector: {exc}\n")
        return 1
    doc = reply.get("status")
    ctx.out.write(json.dumps(doc, indent=2) + "\n" if as_json else render_json_text(doc))
    return 0


def override(inv: Invocation, ctx: Context) -> int:
    """``disable``, ``enable`` or ``drain`` VIRTUAL REAL: one request, the daemon's one line."""
    virtual, real = inv.operands
    cmd = protocol.Verb(inv.verb.value)
    message: dict[str, Any] = {"cmd": cmd, "virtual": virtual, "real": real}
    bound = inv.options.get("timeout")
    if isinstance(bound, float):
        message["timeout"] = bound
    try:
        reply = request(socket_path(inv.cfgname, ctx.control_dir), message)
    except ControlError as exc:
        ctx.err.write(f"ldirector: {inv.verb}: {exc}\n")
        return 1
    ctx.out.write(f"{reply.get('message', 'done')}\n")
    return 0


def render_json_text(doc: object) -> str:
    """``status -v`` text from the JSON document the daemon sent (the client has no model)."""
    from ldirector.observe.render import from_json, render_text

    try:
        return render_text(from_json(doc))
    except (KeyError, TypeError, ValueError):
        return "ldirector: the daemon sent a status this version cannot read\n"
