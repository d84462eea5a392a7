"""rise, slowstart and dynamicweight: parsed, inherited, validated at their line, in --json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from checks.types import ExternalSpec
from ldirector.config import ConfigError
from ldirector.config.render import config_json
from tests.unit.config.cfgtools import load_text

EXTERNAL = "virtual=127.0.0.1:80\n\treal=127.0.0.2:80 masq 10\n\tchecktype=external\n{extra}"


def errors(text: str) -> list[tuple[int, str]]:
    with pytest.raises(ConfigError) as caught:
        load_text(text)
    return [(d.span.line, d.message) for d in caught.value.errors]


def check_json(text: str) -> Any:
    """The first virtual's ``check`` section of ``check --json``, as a client reads it."""
    return json.loads(json.dumps(config_json(load_text(text))))["virtuals"][0]["check"]


def test_defaults_keep_ldirectords_meaning() -> None:
    virtual = load_text(EXTERNAL.format(extra="")).virtuals[0]
    assert (virtual.rise, virtual.slowstart, virtual.dynamicweight) == (1, 0.0, False)
    spec = virtual.reals[0].check
    assert isinstance(spec, ExternalSpec) and not spec.dynamic


def test_per_virtual_values_override_global_ones() -> None:
    text = "rise=2\nslowstart=30\ndynamicweight=yes\n" + EXTERNAL.format(
        extra="\trise=4\n\tslowstart=7.5\n"
    )
    virtual = load_text(text).virtuals[0]
    assert (virtual.rise, virtual.slowstart, virtual.dynamicweight) == (4, 7.5, True)
    spec = virtual.reals[0].check
    assert isinstance(spec, ExternalSpec) and spec.dynamic


def test_slowstart_zero_turns_an_inherited_ramp_off() -> None:
    text = "slowstart=30\n" + EXTERNAL.format(extra="\tslowstart=0\n")
    assert load_text(text).virtuals[0].slowstart == 0.0


def test_check_json_shows_them() -> None:
    check = check_json("rise=3\n" + EXTERNAL.format(extra="\tslowstart=60\n"))
    assert (check["rise"], check["slowstart"], check["dynamicweight"]) == (3, 60.0, False)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("\trise=0\n", "invalid rise: 0 is not in 1..2147483647"),
        ("\tslowstart=-5\n", "invalid slowstart: '-5' is not a number of seconds (0 or more)"),
        ("\tdynamicweight=maybe\n", "dynamicweight"),
    ],
)
def test_bad_values_are_errors_at_their_line(line: str, message: str) -> None:
    found = errors(EXTERNAL.format(extra=line))
    assert len(found) == 1 and found[0][0] == 4
    assert message in found[0][1]


def test_agent_directives_default_to_the_check_cadence() -> None:
    text = "checkinterval=7\nchecktimeout=3\n" + EXTERNAL.format(extra="\tagentport=9777\n")
    virtual = load_text(text).virtuals[0]
    assert (virtual.agentport, virtual.agentinterval, virtual.agenttimeout) == (9777, 7.0, 3.0)
    assert load_text(EXTERNAL.format(extra="")).virtuals[0].agentport is None
    text = "agentinterval=2\n" + EXTERNAL.format(extra="\tagentport=1\n\tagenttimeout=0.5\n")
    doc = check_json(text)
    assert (doc["agentport"], doc["agentinterval"], doc["agenttimeout"]) == (1, 2.0, 0.5)


def test_a_bad_agentport_is_an_error_at_its_line() -> None:
    found = errors(EXTERNAL.format(extra="\tagentport=70000\n"))
    assert found == [(4, "invalid agentport: 70000 is not in 1..65535")]
