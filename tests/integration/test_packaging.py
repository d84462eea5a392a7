"""Packaging: the manual pages built from docs/ agree with --help, the bash completion offers
what --help lists, the Debian version is the program's, and the sdist and wheel build (with
Debian 12's setuptools and with the newest) carrying what operators and packagers need."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from ldirector import __version__
from tests.support.sandbox import REPO

MANPAGES = REPO / "scripts" / "manpages"
COMPLETION = REPO / "contrib" / "bash-completion" / "ldirector"
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")
DEBIAN_PYTHON = Path("/usr/bin/python3")


def program_help(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "ldirector", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    return done.stdout


def verbs() -> list[str]:
    (line,) = [ln for ln in program_help().splitlines() if ln.startswith("VERB: ")]
    return line.removeprefix("VERB: ").split("|")


def options(*verb: str) -> set[str]:
    """The options the help describes on lines of their own (``  -d, --debug  ...``)."""
    rows = [ln for ln in program_help(*verb).splitlines() if ln.lstrip().startswith("-")]
    return set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", "\n".join(rows)))


def test_debian_version_is_the_programs() -> None:
    changelog = (REPO / "debian" / "changelog").read_text().splitlines()[0]
    assert changelog.startswith(f"ldirector ({__version__}) ")


# --- manual pages ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manpages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each page as man renders it at 80 columns; groff's warnings fail the build."""
    if shutil.which("pandoc") is None or shutil.which("man") is None:
        pytest.skip("pandoc or man-db is not installed (tests/deps/packaging.apt)")
    out = tmp_path_factory.mktemp("man")
    subprocess.run(
        [sys.executable, str(MANPAGES), str(out)], check=True, timeout=300, capture_output=True
    )
    pages = {}
    env = {**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"}
    for page in sorted(out.iterdir()):
        done = subprocess.run(
            ["man", "--warnings", "-E", "UTF-8", "-l", str(page)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0 and done.stderr == "", (page.name, done.stderr)
        pages[page.name] = re.sub(r".\x08", "", done.stdout)  # no overstrike bold
    assert set(pages) == {"ldirectord.8", "ldirector.8", "ldirectord.cf.5"}
    return pages


def flat(text: str) -> str:
    """Rendered text with the line breaks and hyphenation man added taken out."""
    return re.sub(r"\s+", " ", re.sub(r"[\u2010-]\n\s*", "", text))


@pytest.mark.parametrize("page", ["ldirectord.8", "ldirector.8"])
def test_manual_page_lists_every_verb_and_option_of_help(
    manpages: dict[str, str], page: str
) -> None:
    text = flat(manpages[page])
    usage = program_help().split("\n\n", 1)[0]
    for line in usage.splitlines():
        rest = line.strip().removeprefix("usage:").split(maxsplit=1)[1]
        synopsis = f"{page.split('.')[0]} {rest}"
        assert synopsis in text, synopsis
    for verb in verbs():
        for line in program_help(verb).splitlines()[:1]:
            syntax = line.split(f" {verb}", 1)[1].strip()
            assert f"{verb} {syntax}".strip() in text, (verb, syntax)
    for option in options() | {o for v in verbs() for o in options(v)}:
        assert option in text, option


def test_config_page_documents_every_directive(manpages: dict[str, str]) -> None:
    reference = (REPO / "docs" / "config-reference.md").read_text()
    directives = re.findall(r"^### (\w+)$", reference, flags=re.MULTILINE)
    assert len(directives) > 50
    text = manpages["ldirectord.cf.5"]
    for name in directives:
        assert re.search(rf"^ {{3}}{name}$", text, flags=re.MULTILINE), name


def test_ldirector_page_is_the_install_guide(manpages: dict[str, str]) -> None:
    text = flat(manpages["ldirector.8"])
    for heading in re.findall(r"^## (.+)$", (REPO / "docs" / "install.md").read_text(), re.M):
        assert heading.replace("`", "") in text, heading
    assert "apt install ./dist/ldirector_*_all.deb" in text


def test_readme_tells_the_same_install_as_the_guide() -> None:
    readme = (REPO / "README.md").read_text()
    guide = (REPO / "docs" / "install.md").read_text()
    head = readme.split("## Two commands")[0]
    commands = re.findall(r"^(?:make deb|apt install \S+|pipx install \S+)", head, re.M)
    assert len(commands) >= 3, "the README's first lines say how an operator installs it"
    for command in commands:
        assert command in guide, command


# --- bash completion -------------------------------------------------------------------------


def complete(words: list[str], bindir: Path) -> list[str]:
    script = f"""
source {BASH_COMPLETION}
source {COMPLETION}
COMP_WORDS=({" ".join(repr(w) for w in words)})
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
_ldirector ldirector "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    done = subprocess.run(
        ["bash", "-c", script],
        env={**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split()


@pytest.fixture
def bindir(tmp_path: Path) -> Path:
    if not BASH_COMPLETION.exists():
        pytest.skip("bash-completion is not installed (tests/deps/packaging.apt)")
    program = tmp_path / "ldirector"
    program.write_text(f'#!/bin/sh\ncd {REPO} && exec {sys.executable} -m ldirector "$@"\n')
    program.chmod(0o755)
    return tmp_path


def test_completion_offers_every_verb_and_option_of_help(bindir: Path) -> None:
    assert set(verbs()) <= set(complete(["ldirector", ""], bindir))
    assert complete(["ldirector", "st"], bindir) == ["start", "stop", "status"]
    long_top = {o for o in options() if o.startswith("--")}
    assert long_top <= set(complete(["ldirector", "--"], bindir))
    for verb in verbs():
        wanted = {o for o in options(verb) if o.startswith("--") and o != "--help"}
        assert wanted <= set(complete(["ldirector", verb, "--"], bindir)), verb


def test_completion_completes_config_paths(bindir: Path) -> None:
    assert complete(["ldirector", "./examples/na"], bindir) == ["./examples/nat.cf"]
    assert complete(["ldirector", "check", "./examples/tun"], bindir) == [
        "./examples/tunnelling.cf"
    ]
    assert "reload" in complete(["ldirector", "./examples/nat.cf", "rel"], bindir)


# --- sdist and wheel -------------------------------------------------------------------------


def source_copy(dest: Path) -> Path:
    """The tree's files as git would commit them, without build state."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        name = raw.decode()
        source = REPO / name
        if not (source.exists() or source.is_symlink()):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    return dest


def build(python: Path | str, tree: Path, *flags: str) -> tuple[Path, Path]:
    out = tree / "dist"
    done = subprocess.run(
        [str(python), "-m", "build", *flags, "--sdist", "--wheel", "--outdir", str(out), str(tree)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("ldirector-*.tar.gz")
    (wheel,) = out.glob("ldirector-*.whl")
    return sdist, wheel


def check_distributions(sdist: Path, wheel: Path) -> None:
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for wanted in (
        "LICENSE",
        "docs/install.md",
        "docs/config-reference.md",
        "contrib/ldirectord.service",
        "contrib/ldirectord.init",
        "contrib/ocf/ldirector",
        "contrib/bash-completion/ldirector",
        "examples/ldirectord.cf",
        "examples/firewall-mark.cf",
        "debian/control",
        "scripts/manpages",
    ):
        assert wanted in names, wanted
    assert not any("__pycache__" in n for n in names)
    with zipfile.ZipFile(wheel) as whl:
        files = whl.namelist()
        (metadata,) = [n for n in files if n.endswith(".dist-info/METADATA")]
        meta = whl.read(metadata).decode()
        (entry_points,) = [n for n in files if n.endswith(".dist-info/entry_points.txt")]
        scripts = whl.read(entry_points).decode()
    assert "ldirector/cli/main.py" in files and "checks/__init__.py" in files
    assert "ldirectord = ldirector.cli.main:main" in scripts
    assert "Classifier: License :: OSI Approved :: Apache Software License" in meta
    assert re.search(r"^Project-URL: Homepage, https://", meta, re.M)
    assert f"Version: {__version__}" in meta
    # setuptools 66 writes "aiohttp (>=3.8.4)", newer ones "aiohttp>=3.8.4".
    assert re.search(r"^Requires-Dist: aiohttp ?\(?>=3\.8\.4\)?$", meta, re.M)
    apache = (REPO / "LICENSE").read_text()
    assert "Apache License" in apache and "Version 2.0, January 2004" in apache
    assert "END OF TERMS AND CONDITIONS" in apache


@pytest.mark.slow
def test_sdist_and_wheel_with_debian_setuptools(tmp_path: Path) -> None:
    """Debian 12's setuptools 66, the declared minimum, builds both (no build isolation)."""
    probe = subprocess.run(
        [str(DEBIAN_PYTHON), "-c", "import build, setuptools"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("python3-build/python3-setuptools are not installed (packaging.apt)")
    tree = source_copy(tmp_path / "src")
    check_distributions(*build(DEBIAN_PYTHON, tree, "--no-isolation"))


@pytest.mark.slow
def test_sdist_and_wheel_with_the_newest_setuptools(tmp_path: Path) -> None:
    """pip's path: `python -m build` in an isolated environment with the newest setuptools."""
    spec = importlib.util.find_spec("build")
    if spec is None or spec.origin is None:  # (a build/ directory is no package)
        pytest.skip("the `build` package is not installed (pyproject's test extra)")
    tree = source_copy(tmp_path / "src")
    check_distributions(*build(sys.executable, tree))
