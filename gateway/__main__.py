"""``python -m gateway``: the ``meshgate`` command."""

from gateway.cli import main

raise SystemExit(main())
