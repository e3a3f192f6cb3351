"""``python -m reclaim.sweeper``: the ``reclaim sweep`` command (:mod:`reclaim.cli.sweep`)."""

import sys

from reclaim.cli.sweep import main

sys.exit(main(sys.argv[1:]))
