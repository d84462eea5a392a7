"""render: the model as ``check --json`` prints it; parsed values come back as plain text."""

from __future__ import annotations

from ldirector.config.render import config_json
from tests.unit.config.cfgtools import TESTDATA, load_fixture


def test_mail_settings_are_printed_as_text() -> None:
    data = config_json(load_fixture(TESTDATA / "valid" / "mail.cf"))
    glob = data["global"]
    assert isinstance(glob, dict)
    assert glob["emailalertfrom"] == '"LVS, Ops" <lvs@example.test>'
    virtuals = data["virtuals"]
    assert isinstance(virtuals, list)
    first, second, third = virtuals
    assert first["smtp"] == "[::1]:25"
    assert first["emailalert"] == [
        "Ops Team <ops@example.test>",
        "root",
        '"On, Call" <oncall@example.test>',
    ]
    assert first["fallbackcommand"] == "/usr/local/bin/all-down 'two words' --quiet"
    assert second["smtp"] == "localhost:25"
    assert third["smtp"] == "[2001:db8::25]:2525"
    assert third["fallbackcommand"] == "/usr/local/bin/all-down 'two words' --quiet"


def test_unset_mail_settings_are_null() -> None:
    data = config_json(load_fixture(TESTDATA / "valid" / "http-globals.cf"))
    virtuals = data["virtuals"]
    assert isinstance(virtuals, list)
    assert (virtuals[0]["smtp"], virtuals[0]["fallbackcommand"]) == (None, None)
    assert virtuals[0]["emailalert"] == []
