"""Kernel suite: runs inside the VM that scripts/vm-test boots (a package so names stay unique)."""
