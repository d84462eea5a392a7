"""The CIB XML that ``crm configure load update`` makes of a crm shell file, without crmsh.

crmsh takes minutes to start under the kernel suite's emulation, so the Pacemaker VM test
(tests/kernel/test_kernel_pacemaker.py) seeds each node's CIB with this module's rendering of
``contrib/pacemaker/crm.txt`` instead. It knows only the commands that file uses, with crmsh's
element ids, and refuses anything else; tests/integration/test_contrib.py holds it to crmsh's
own output for the shipped file wherever crmsh can run (the host), so what the VM loads is
what crmsh would have loaded.
"""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET

#: The crm_config property set crmsh adds ``property`` lines to.
PROPERTY_SET = "cib-bootstrap-options"
#: crmsh's scores by name.
SCORES = {"inf": "INFINITY", "-inf": "-INFINITY", "+inf": "INFINITY"}


class CrmSyntaxError(ValueError):
    """A line this converter does not know: crmsh may, but the VM test cannot load it."""


def commands(text: str) -> list[list[str]]:
    """The file's commands, each as its words: comments dropped, continued lines joined."""
    out: list[list[str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        if words:
            out.append(words)
    if pending:
        raise CrmSyntaxError(f"a continued line ends the file: {pending!r}")
    return out


def _pairs(words: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for word in words:
        name, eq, value = word.partition("=")
        if not eq:
            raise CrmSyntaxError(f"not NAME=VALUE: {word!r}")
        pairs.append((name, value))
    return pairs


def _attributes(parent: ET.Element, tag: str, set_id: str, pairs: list[tuple[str, str]]) -> None:
    block = ET.SubElement(parent, tag, id=set_id)
    for name, value in pairs:
        ET.SubElement(block, "nvpair", name=name, value=value, id=f"{set_id}-{name}")


def _sections(words: list[str], keys: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """``KEY word... KEY word...`` split at each key; the words before the first key under ""."""
    out: list[tuple[str, list[str]]] = [("", [])]
    for word in words:
        if word in keys:
            out.append((word, []))
        else:
            out[-1][1].append(word)
    return out


def primitive(words: list[str]) -> ET.Element:
    """``primitive ID CLASS:PROVIDER:TYPE [params ...] [meta ...] [op NAME ...]...``."""
    head, *rest = _sections(words, ("params", "meta", "op"))
    if len(head[1]) != 2:
        raise CrmSyntaxError(f"primitive: {words}")
    rid, agent = head[1]
    parts = agent.split(":")
    if len(parts) != 3 or parts[0] != "ocf":
        raise CrmSyntaxError(f"{rid}: only ocf:PROVIDER:TYPE agents: {agent!r}")
    elem = ET.Element(
        "primitive", {"id": rid, "class": "ocf", "provider": parts[1], "type": parts[2]}
    )
    ops: list[ET.Element] = []
    for key, values in rest:
        if key == "params":
            _attributes(elem, "instance_attributes", f"{rid}-instance_attributes", _pairs(values))
        elif key == "meta":
            _attributes(elem, "meta_attributes", f"{rid}-meta_attributes", _pairs(values))
        else:
            name, *more = values
            attrs = dict(_pairs(more))
            attrs.setdefault("interval", "0")
            op = ET.Element(
                "op", {"name": name, **attrs, "id": f"{rid}-{name}-{attrs['interval']}"}
            )
            ops.append(op)
    if ops:
        ET.SubElement(elem, "operations").extend(ops)
    return elem


def _meta_only(kind: str, words: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    head, *rest = _sections(words, ("meta",))
    if any(key != "meta" for key, _ in rest):
        raise CrmSyntaxError(f"{kind}: {words}")
    return head[1], [pair for _, values in rest for pair in _pairs(values)]


def configuration(text: str, seed: ET.Element) -> None:
    """Add what the crm shell file ``text`` defines to the ``configuration`` of CIB ``seed``."""
    config = seed.find("configuration")
    assert config is not None, "a CIB has a configuration"
    section = {tag: _section(config, tag) for tag in ("crm_config", "resources", "constraints")}
    resources: dict[str, ET.Element] = {}
    for command, *words in commands(text):
        if command == "primitive":
            elem = primitive(words)
            resources[elem.get("id", "")] = elem
        elif command in ("clone", "group"):
            names, meta = _meta_only(command, words)
            rid, members = names[0], names[1:]
            if not members or (command == "clone" and len(members) != 1):
                raise CrmSyntaxError(f"{command}: {words}")
            elem = ET.Element(command, id=rid)
            if meta:
                _attributes(elem, "meta_attributes", f"{rid}-meta_attributes", meta)
            for member in members:
                if member not in resources:
                    raise CrmSyntaxError(f"{rid}: {member} is not defined before it")
                elem.append(resources.pop(member))
            resources[rid] = elem
        elif command in ("colocation", "order"):
            if len(words) != 4 or not words[1].endswith(":"):
                raise CrmSyntaxError(f"{command}: {words} (only ID SCORE: A B)")
            cid, score, first, then = words[0], words[1][:-1], words[2], words[3]
            if command == "colocation":
                tag = "rsc_colocation"
                attrs = {"score": SCORES.get(score, score), "rsc": first, "with-rsc": then}
            else:
                tag, attrs = "rsc_order", {"kind": score, "first": first, "then": then}
            ET.SubElement(section["constraints"], tag, {"id": cid, **attrs})
        elif command in ("rsc_defaults", "op_defaults"):
            set_id = "rsc-options" if command == "rsc_defaults" else "op-options"
            _attributes(_section(config, command), "meta_attributes", set_id, _pairs(words))
        elif command == "property":
            props = section["crm_config"].find(f"cluster_property_set[@id='{PROPERTY_SET}']")
            if props is None:
                props = ET.SubElement(section["crm_config"], "cluster_property_set")
                props.set("id", PROPERTY_SET)
            for name, value in _pairs(words):
                ET.SubElement(props, "nvpair", name=name, value=value)
                props[-1].set("id", f"{PROPERTY_SET}-{name}")
        else:
            raise CrmSyntaxError(f"unknown command {command!r}")
    section["resources"].extend(resources.values())


def _section(config: ET.Element, tag: str) -> ET.Element:
    found = config.find(tag)
    return found if found is not None else ET.SubElement(config, tag)


def cib(text: str, seed: str) -> str:
    """CIB ``seed`` (XML text) with the crm shell file ``text`` loaded into it."""
    root = ET.fromstring(seed)  # noqa: S314 (the caller's own seed)
    configuration(text, root)
    return ET.tostring(root, encoding="unicode")


def canonical(elem: ET.Element) -> tuple[object, ...]:
    """An element as a comparable value (parsed without comments), attribute and child order
    ignored, as crmsh orders resources and attributes its own way and Pacemaker does not care;
    except in a group, whose members start in their order."""
    children = [canonical(child) for child in elem]
    if elem.tag != "group":
        children.sort(key=repr)
    return (elem.tag, tuple(sorted(elem.attrib.items())), tuple(children))
