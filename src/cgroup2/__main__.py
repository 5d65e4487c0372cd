"""``python -m cgroup2``: the ``cgroup2`` command."""

from .cli import script

script()
