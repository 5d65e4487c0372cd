"""``python -m cgroup2``: the ``cgroup2`` command."""

import sys

from .cli import main

sys.exit(main())
