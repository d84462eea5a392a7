"""Settings shared by the whole test suite."""

from __future__ import annotations

import os

from hypothesis import settings

# In CI the property tests run the same examples every time, so a red run is reproducible and
# never depends on the draw; local runs stay random and keep finding new inputs. No deadline in
# CI: the machine is shared and a slow example is not a failure.
settings.register_profile("ci", derandomize=True, deadline=None, database=None)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

# Fixtures shared across folders, from the support package.
pytest_plugins = ["tests.support.sandbox", "tests.support.smtp", "tests.support.daemon_fixtures"]
