"""Real daemons and test support for the part-2 checks (ftp ... radius); see support.py."""
