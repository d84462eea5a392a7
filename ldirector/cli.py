"""Command line entry point (placeholder until the config layer lands)."""

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the ldirector command line."""
    del argv
    print("ldirector: not implemented yet", file=sys.stderr)
    return 1
