"""Helpers shared by the test suites: servers, sandboxes, worlds built on the fakes."""

from pathlib import Path

#: The repository's root.
REPO = Path(__file__).resolve().parents[2]
