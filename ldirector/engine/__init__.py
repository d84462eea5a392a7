"""The running core of ``ldirector start``: probes, health and the kernel table in one loop.

``Engine`` (in ``core``) joins the scheduler, the health state machine, the desired table and
``reconcile.diff`` over an IPVS backend; the other modules are its edges (probe planning,
fallbackcommand, maintenancedir).
"""

from ldirector.engine.core import DEFAULT_RESYNC_INTERVAL, Engine
from ldirector.engine.notices import Notice

__all__ = ["DEFAULT_RESYNC_INTERVAL", "Engine", "Notice"]
