"""HTTP_GET's and SSL_GET's own settings: the first ``url`` block is the page ldirector fetches.

``path`` is the request and ``regex`` the receive; a ``status_code`` list other than 200-299
and a ``digest`` have no ldirector equivalent and are reported, as is any further url (keepalived
checks them all, ldirector fetches one page).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ldirector.config.converters import compile_receive
from ldirector.config.keepalived.grammar import Node
from ldirector.config.keepalived.report import Report, hostname, safe, shown
from ldirector.config.values import Invalid

_STATUS = re.compile(r"([0-9]{3})(?:-([0-9]{3}))?")
_EVERY_2XX = frozenset(range(200, 300))


class HttpChecker:
    """The ``url`` blocks and options of HTTP_GET and SSL_GET."""

    def __init__(self, tls: bool) -> None:
        self.tls = tls  # SSL_GET
        self.path: str | None = None
        self.receive: str | None = None
        self.virtualhost: str | None = None
        self.urls = 0

    def take(self, child: Node, report: Report) -> bool:
        """Whether ``child`` is an HTTP setting; taken, or reported, when it is."""
        match child.keyword:
            case "url":
                self.urls += 1
                if self.urls == 1:
                    self.url(child, report)
                else:
                    report.drop(
                        child.span,
                        "url: only the first url of a checker is converted "
                        "(ldirector fetches one page per check)",
                    )
            case "enable_sni" if self.tls:
                pass  # ldirector sends the virtualhost as SNI whenever there is one
            case "http_protocol":
                word = child.args[0] if child.args else ""
                if word not in ("1.1", "1.0C"):
                    report.drop(
                        child.span,
                        f"http_protocol {shown(word)}: not converted: ldirector speaks HTTP/1.1 "
                        "with Connection: close",
                    )
            case "fast_recovery":
                report.drop(child.span, "fast_recovery: not converted: ldirector fetches one url")
            case _:
                return False
        return True

    def url(self, node: Node, report: Report) -> None:
        for child in node.children or ():
            word = " ".join(child.args)
            match child.keyword:
                case "path":
                    if not word or not safe(word) or " " in word:
                        report.drop(child.span, f"path {shown(word)}: cannot be written; / is used")
                    else:
                        self.path = word if word.startswith("/") else "/" + word
                case "regex":
                    self.regex(child, word, report)
                case "virtualhost":
                    if not hostname(word):
                        report.drop(child.span, f"virtualhost {shown(word)}: not a host name")
                    else:
                        self.virtualhost = word
                case "status_code":
                    codes = _status_codes(child.args)
                    if codes != _EVERY_2XX:
                        report.drop(
                            child.span,
                            f"status_code {shown(word)}: not converted: ldirector takes any 2xx "
                            "status as up, and no other",
                        )
                case "digest":
                    report.drop(
                        child.span,
                        "digest: not converted: ldirector matches the page against receive "
                        "(a regex), not an MD5 digest",
                    )
                case _:
                    report.drop(child.span, f"{child.keyword}: not converted in a url block")
        if self.path is None:
            self.path = "/"

    def regex(self, child: Node, word: str, report: Report) -> None:
        if not word or not safe(word):
            report.drop(child.span, f"regex {shown(word)}: cannot be written in ldirectord.cf")
            return
        try:
            compile_receive(word)
        except Invalid as exc:
            report.drop(child.span, f"regex {shown(word)}: {exc}")
            return
        self.receive = word

    def request(self) -> str:
        return self.path or "/"


def _status_codes(words: Iterable[str]) -> frozenset[int] | None:
    codes: set[int] = set()
    for word in words:
        m = _STATUS.fullmatch(word)
        if m is None:
            return None
        low = int(m.group(1))
        high = int(m.group(2) or low)
        codes.update(range(low, high + 1))
    return frozenset(codes)
