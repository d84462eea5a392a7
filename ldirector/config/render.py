"""The effective configuration as plain JSON data, for ``ldirector check --json``.

Pure. The schema is documented in docs/check-json.md; secrets are never printed, only whether
they are set.
"""

from __future__ import annotations

import shlex
from ipaddress import IPv6Address

from ldirector.config.errors import Diagnostic
from ldirector.config.model import Config, Fallback, Real, Virtual
from ldirector.ipvs.sync import SyncDaemon

SCHEMA_VERSION = 1

Json = dict[str, object]


def _hostport(where: tuple[str, int] | None) -> str | None:
    if where is None:
        return None
    host, port = where
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def config_json(config: Config) -> Json:
    """The whole effective config."""
    return {
        "schema": SCHEMA_VERSION,
        "config": config.path,
        "valid": True,
        "global": {
            "checkinterval": config.checkinterval,
            "autoreload": config.autoreload,
            "callback": config.callback,
            "logfile": config.logfile,
            "execute": list(config.execute),
            "fork": config.fork,
            "supervised": config.supervised,
            "readdquiescent": config.readdquiescent,
            "emailalertfrom": _text(config.emailalertfrom),
            "maintenancedir": config.maintenancedir,
            "resyncinterval": config.resyncinterval,
            "httpstatus": _hostport(config.httpstatus),
        },
        "ipvs_sysctls": dict(config.ipvs_sysctls),
        "syncdaemons": [sync_json(d) for d in config.syncdaemons],
        "virtuals": [virtual_json(v) for v in config.virtuals],
        "diagnostics": [diagnostic_json(d) for d in config.warnings],
    }


def sync_json(daemon: SyncDaemon) -> Json:
    """One sync daemon's settings (``maxlen`` None: derived from the interface MTU)."""
    return {
        "state": daemon.state.word,
        "interface": daemon.interface,
        "syncid": daemon.syncid,
        "maxlen": daemon.maxlen,
        "group": str(daemon.group),
        "port": daemon.port,
        "ttl": daemon.ttl,
    }


def invalid_json(path: str, diagnostics: tuple[Diagnostic, ...]) -> Json:
    """What ``--json`` prints for an invalid config: the diagnostics only."""
    return {
        "schema": SCHEMA_VERSION,
        "config": path,
        "valid": False,
        "diagnostics": [diagnostic_json(d) for d in diagnostics],
    }


def diagnostic_json(d: Diagnostic) -> Json:
    """One diagnostic."""
    return {
        "severity": str(d.severity),
        "file": d.span.file,
        "line": d.span.line,
        "message": d.message,
    }


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def virtual_json(v: Virtual) -> Json:
    """One virtual service with its effective settings and reals."""
    return {
        "vid": v.vid,
        "line": v.span.line,
        "protocol": str(v.protocol),
        "family": v.family,
        "address": _text(v.address),
        "port": v.port,
        "fwmark": v.fwmark,
        "scheduler": v.scheduler,
        "schedflags": list(v.schedflags),
        "persistent": v.persistent,
        "netmask": None if v.netmask is None else str(v.netmask),
        "ops": v.ops,
        "check": {
            "checktype": str(v.checktype),
            "combined_connects": v.combined_connects,
            "service": str(v.service),
            "checkport": v.checkport,
            "checktimeout": v.checktimeout,
            "negotiatetimeout": v.negotiatetimeout,
            "checkinterval": v.checkinterval,
            "checkcount": v.checkcount,
            "failurecount": v.failurecount,
            "rise": v.rise,
            "slowstart": v.slowstart,
            "dynamicweight": v.dynamicweight,
            "agentport": v.agentport,
            "agentinterval": v.agentinterval,
            "agenttimeout": v.agenttimeout,
            "checkcommand": v.checkcommand,
            "request": v.request,
            "receive": v.receive,
            "httpmethod": str(v.httpmethod),
            "virtualhost": v.virtualhost,
            "httpsverify": v.httpsverify,
            "httpscafile": v.httpscafile,
            "dnsquerytype": _text(v.dnsquerytype),
            "login": v.login,
            "passwd_set": bool(v.passwd),
            "database": v.database,
            "secret_set": bool(v.secret),
        },
        "quiescent": v.quiescent,
        "cleanstop": v.cleanstop,
        "fallback": None if v.fallback is None else fallback_json(v.fallback),
        "fallbackcommand": shlex.join(v.fallbackcommand) if v.fallbackcommand else None,
        "emailalert": [str(a) for a in v.emailalert],
        "emailalertfreq": v.emailalertfreq,
        "emailalertstatus": [str(s) for s in v.emailalertstatus],
        "smtp": _text(v.smtp),
        "monitorfile": v.monitorfile,
        "servicename": v.servicename,
        "comment": v.comment,
        "reals": [real_json(r) for r in v.reals],
    }


def fallback_json(f: Fallback) -> Json:
    """The effective fallback server."""
    return {"address": str(f.address), "port": f.port, "forward": f.forward.word}


def real_json(r: Real) -> Json:
    """One real server; ``check_port`` is the port its checks probe."""
    return {
        "address": str(r.address),
        "port": r.port,
        "forward": r.forward.word,
        "weight": r.weight,
        "lower": r.lower,
        "upper": r.upper,
        "request": r.request,
        "receive": r.receive,
        "check_port": r.target.port,
        "family": 6 if isinstance(r.address, IPv6Address) else 4,
        "line": r.span.line,
    }
