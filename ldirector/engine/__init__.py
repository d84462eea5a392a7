"""The running core of ``ldirector start``: checks, health and the kernel table in one loop.

``Engine`` joins the scheduler, the health of every real (``observed``), the desired table and
``reconcile.diff`` over an IPVS backend, and tells what the kernel took (``oplog``); the other
modules are its edges (fallbackcommand, maintenancedir, monitorfile).
"""

from ldirector.core.events import Notice
from ldirector.engine.engine import DEFAULT_RESYNC_INTERVAL, Engine

__all__ = ["DEFAULT_RESYNC_INTERVAL", "Engine", "Notice"]
