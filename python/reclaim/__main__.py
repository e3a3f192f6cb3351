"""``python -m reclaim``: the ``reclaim`` command."""

from reclaim.cli import main

raise SystemExit(main())
