"""``python -m ldirector``: the same program as the ``ldirector`` console script."""

from ldirector.cli.main import main

raise SystemExit(main())
