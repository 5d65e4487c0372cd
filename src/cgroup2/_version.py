"""The version of the package: the one place it is written.

``pyproject.toml`` reads it from here when the package is built (setuptools' ``attr:``,
which parses this file without importing it), and ``cgroup2.__version__`` and
``cgroup2 --version`` import it, so all three always agree. A plain module, not
``importlib.metadata``: it costs nothing at import and is right in a source tree too.
"""

__version__ = "0.1.0"
