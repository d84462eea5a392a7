"""The one command-line grammar: ``[-d|--debug] [--] [CONFIG] VERB [VERB OPTIONS]``.

ldirectord's rules, extended to every verb: options come first, then an optional config name,
then the verb; ``-h``/``--help`` and ``-v``/``--version`` stand alone. What a verb accepts after
it (flags, a value, operands) is that verb's ``Syntax``, a row of the verb table, so the parser,
the usage text and each verb's ``--help`` all read the same rows. Pure: no I/O.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ldirector import __version__
from ldirector.config.loader import DEFAULT_CONFIG
from ldirector.core import wording

#: The name a config is known by when none is given (pid file, log prefix, control socket).
DEFAULT_CFGNAME = "ldirectord"
#: The file read when no config is given (looked up like any other name).
#: ldirectord's name for itself: the program answers to both.
LDIRECTORD = "ldirectord"
LDIRECTOR = "ldirector"

HELP = ("-h", "-?", "--help")
VERSION = ("-v", "--version")
DEBUG = ("-d", "--debug")
#: Runs (and finds) the shadow instance of a config: it checks and compares, and writes nothing
#: another manager owns.
SHADOW = "--shadow"
#: What a shadow instance adds to its config's name (pid file, log prefix, control socket).
SHADOW_SUFFIX = ".shadow"


class Verb(enum.StrEnum):
    """Every verb, in the order the usage lists them (ldirectord's own first)."""

    START = "start"
    STOP = "stop"
    RESTART = "restart"
    TRY_RESTART = "try-restart"
    RELOAD = "reload"
    FORCE_RELOAD = "force-reload"
    STATUS = "status"
    CHECK = "check"
    DISABLE = "disable"
    ENABLE = "enable"
    DRAIN = "drain"
    IMPORT = "import"


@dataclass(frozen=True, slots=True)
class Option:
    """A verb's option: a flag, or (with ``convert``) an option taking one value."""

    names: tuple[str, ...]
    dest: str
    help: str
    #: Turns the value into what the handler reads; raises ValueError with the complaint.
    convert: Callable[[str], object] | None = None
    metavar: str = ""

    @property
    def synopsis(self) -> str:
        value = f" {self.metavar}" if self.convert is not None else ""
        return f"[{'|'.join(self.names)}{value}]"


@dataclass(frozen=True, slots=True)
class Operand:
    """A required word after the verb; ``check`` raises ValueError with the complaint."""

    name: str
    check: Callable[[str], object] | None = None


@dataclass(frozen=True, slots=True)
class Syntax:
    """What one verb accepts after it, and the line of help the usage shows for it."""

    help: str
    options: tuple[Option, ...] = ()
    operands: tuple[Operand, ...] = ()
    #: The config may also follow the verb (``check CONFIG``).
    config_after: bool = False
    #: Printed under the verb's own usage (what its operands look like).
    note: str = ""

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if name in o.names), None)

    def synopsis(self, verb: Verb) -> str:
        words = [verb.value, *(o.name for o in self.operands), *(o.synopsis for o in self.options)]
        if self.config_after:
            words.append("[CONFIG]")
        return " ".join(words)


Table = Mapping[Verb, Syntax]


@dataclass(frozen=True, slots=True)
class Invocation:
    """One parsed command line."""

    argv: tuple[str, ...]
    verb: Verb
    #: The config name as given, before or after the verb; None: the default.
    config_arg: str | None
    debug: bool
    options: Mapping[str, object] = field(default_factory=dict)
    operands: tuple[str, ...] = ()
    #: ``--shadow``: the instance that compares and never writes.
    shadow: bool = False

    @property
    def cfgname(self) -> str:
        """The config's name in the pid file, the log prefix and the socket: its basename
        (with :data:`SHADOW_SUFFIX` for the shadow instance)."""
        return cfgname_of(self.config_arg, self.shadow)

    @property
    def config_name(self) -> str:
        """The name to look up: the one given, or ldirectord's default."""
        return self.config_arg if self.config_arg is not None else DEFAULT_CONFIG

    def flag(self, dest: str) -> bool:
        return bool(self.options.get(dest))


@dataclass(frozen=True, slots=True)
class Help:
    """``-h``: the usage (of one verb, when given after it)."""

    verb: Verb | None = None


@dataclass(frozen=True, slots=True)
class Version:
    """``-v``/``--version``."""


class UsageError(Exception):
    """A command line the grammar refuses: one line, then the usage (of ``verb`` if known)."""

    def __init__(self, message: str, verb: Verb | None = None) -> None:
        super().__init__(message)
        self.verb = verb


def cfgname_of(config_arg: str | None, shadow: bool = False) -> str:
    name = os.path.basename(config_arg) if config_arg is not None else DEFAULT_CFGNAME
    return name + SHADOW_SUFFIX if shadow else name


def parse(argv: Sequence[str], table: Table) -> Invocation | Help | Version:
    """Parse a command line; raise ``UsageError`` for one the grammar refuses."""
    debug, shadow, words = _options(argv)
    if isinstance(words, Help | Version):
        return words
    config, verb, more = _locate(words)
    inv = _verb_args(tuple(argv), debug, config, verb, more, table)
    return replace(inv, shadow=True) if shadow and isinstance(inv, Invocation) else inv


def runs_config(cfgname: str) -> Callable[[Sequence[str]], bool]:
    """Whether the arguments of a running program (after its name) run config ``cfgname``."""

    def matches(args: Sequence[str]) -> bool:
        try:
            _debug, shadow, words = _options(args)
            if isinstance(words, Help | Version):
                return False
            config, _verb, _more = _locate(words)
        except UsageError:
            return False
        return cfgname_of(config, shadow) == cfgname

    return matches


def _options(argv: Sequence[str]) -> tuple[bool, bool, list[str] | Help | Version]:
    """The leading options (``require_order``, as ldirectord's Getopt): debug, shadow, and the
    rest."""
    debug = shadow = False
    rest = list(argv)
    while rest and rest[0].startswith("-") and rest[0] != "-":
        opt = rest.pop(0)
        if opt == "--":
            break
        if opt in DEBUG:
            debug = True
        elif opt == SHADOW:
            shadow = True
        elif opt in HELP:
            return debug, shadow, Help()
        elif opt in VERSION:
            return debug, shadow, Version()
        else:
            raise UsageError(f"Unknown option: {opt.lstrip('-')}")
    return debug, shadow, rest


def _verb(word: str) -> Verb | None:
    try:
        return Verb(word)
    except ValueError:
        return None


def _locate(words: list[str]) -> tuple[str | None, Verb, list[str]]:
    """``VERB ...`` or ``CONFIG VERB ...``."""
    if words and (verb := _verb(words[0])) is not None:
        return None, verb, words[1:]
    if len(words) >= 2 and (verb := _verb(words[1])) is not None:
        return words[0], verb, words[2:]
    if not words:
        raise UsageError("no verb given")
    if any(_verb(w) is not None for w in words[2:]):
        raise UsageError(f"one config at most before the verb: {' '.join(words)}")
    # The unknown word is the verb's place: the second unless there is one or it is an option.
    guesses = [words[0]] if len(words) == 1 or words[1].startswith("-") else [words[1], words[0]]
    import difflib  # only a mistyped command line needs it

    for word in guesses:
        close = difflib.get_close_matches(word, [v.value for v in Verb], n=1)
        if close:
            raise UsageError(f"unknown verb {word!r}; did you mean {close[0]!r}?")
    raise UsageError(f"unknown verb {guesses[0]!r}")


def _verb_args(
    argv: tuple[str, ...],
    debug: bool,
    config: str | None,
    verb: Verb,
    more: list[str],
    table: Table,
) -> Invocation | Help:
    syntax = table[verb]
    values: dict[str, object] = {o.dest: None if o.convert else False for o in syntax.options}
    operands: list[str] = []
    words = iter(more)
    for word in words:
        if word in HELP:
            return Help(verb)
        if not word.startswith("-") or word == "-":
            operands.append(word)
            continue
        name, eq, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        option = syntax.option(name)
        if option is None:
            elsewhere = [v.value for v, s in table.items() if s.option(name) is not None]
            if elsewhere:
                raise UsageError(f"{verb}: {name} applies to {' and '.join(elsewhere)} only", verb)
            raise UsageError(f"{verb}: unknown option {word}", verb)
        if option.convert is None:
            if eq:
                raise UsageError(f"{verb}: {name} takes no value", verb)
            values[option.dest] = True
            continue
        raw = inline if eq else next(words, None)
        if raw is None:
            raise UsageError(f"{verb}: {name} needs {option.metavar}", verb)
        try:
            values[option.dest] = option.convert(raw)
        except ValueError as exc:
            raise UsageError(f"{verb}: {name} {exc}", verb) from None
    if syntax.config_after and operands:
        if len(operands) > 1:
            raise UsageError(f"{verb}: one config at most, not {' '.join(operands)}", verb)
        if config is not None:
            raise UsageError(f"config given twice: {config} and {operands[0]}", verb)
        config, operands = operands[0], []
    if len(operands) != len(syntax.operands):
        if not syntax.operands:
            raise UsageError(f"{verb}: unexpected {' '.join(operands)}", verb)
        raise UsageError(f"{verb} needs {' and '.join(o.name for o in syntax.operands)}", verb)
    for operand, word in zip(syntax.operands, operands, strict=True):
        if operand.check is not None:
            try:
                operand.check(word)
            except ValueError as exc:
                raise UsageError(f"{verb}: {exc}", verb) from None
    return Invocation(argv, verb, config, debug, values, tuple(operands))


# --- the texts ---------------------------------------------------------------------------------


def program_name(argv0: str) -> str:
    """``ldirectord`` when run by that name (its usage then looks like ldirectord's)."""
    return LDIRECTORD if os.path.basename(argv0) == LDIRECTORD else LDIRECTOR


def usage(prog: str, table: Table, verb: Verb | None = None) -> str:
    """The usage: every verb's line from the table, or one verb's usage with its options."""
    # ldirectord's pod2usage says "Usage:"; argparse-style programs say "usage:".
    head = "Usage:" if prog == LDIRECTORD else "usage:"
    pad = " " * len(head)
    top = f"{prog} [-d|--debug] [--] [CONFIG]"
    if verb is not None:
        syntax = table[verb]
        lines = [f"{head} {top} {syntax.synopsis(verb)}", f"{pad} {prog} [CONFIG] {verb} --help"]
        lines += ["", syntax.help]
        lines += [f"  {_names(o):<22} {o.help}" for o in syntax.options]
        lines += [syntax.note] if syntax.note else []
        return "\n".join(lines) + "\n"
    width = max(len(s.synopsis(v)) for v, s in table.items())
    lines = [
        f"{head} {top} VERB [VERB OPTIONS]",
        f"{pad} {prog} [VERB] -h|-?|--help",
        f"{pad} {prog} -v|--version",
        "",
        "VERB: " + "|".join(v.value for v in Verb),
        *(f"  {table[v].synopsis(v):<{width}}  {table[v].help}" for v in Verb),
        "",
        "CONFIG: a name looked up in /etc/ha.d, then /etc/ha.d/conf, then as a path"
        f" (default {DEFAULT_CONFIG})",
        "Options:",
        "  -d, --debug    stay in the foreground, write no pid file, log to stderr",
        "  --shadow       the shadow instance: check and compare with the kernel table,"
        " write nothing",
        "  -h, --help     show this help (after a verb: that verb's)",
        "  -v, --version  show the version",
    ]
    return "\n".join(lines) + "\n"


def _names(option: Option) -> str:
    value = f" {option.metavar}" if option.convert is not None else ""
    return ", ".join(option.names) + value


def version_text() -> str:
    return (
        f"{LDIRECTOR} {__version__} ({wording.VERSION_LINE})\n"
        "A drop-in replacement for ldirectord, the Linux Virtual Server health-check manager.\n"
        "Licensed under the Apache License, Version 2.0.\n"
    )
