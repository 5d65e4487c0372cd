"""The one build step ``pyproject.toml`` cannot declare: the man page.

``cgroup2(1)`` is generated from the command's argparse parser (``cgroup2.cli._reference``)
into ``build/man/cgroup2.1`` as part of ``build`` (so for a wheel, an sdist's wheel and an
editable install alike) and installed as the data file ``share/man/man1/cgroup2.1``
(``<prefix>/share/man/man1``, where ``man`` finds it for a program in ``<prefix>/bin``).
Everything else about the package is in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import sys

from setuptools import Command, setup
from setuptools.command.build import build

HERE = os.path.dirname(os.path.abspath(__file__))
MAN = "build/man/cgroup2.1"


class build_man(Command):  # setuptools names its commands so
    description = "generate the man page cgroup2(1) from the command's parser"
    user_options: list[tuple[str, str | None, str]] = []  # noqa: RUF012

    def initialize_options(self) -> None:
        pass

    def finalize_options(self) -> None:
        pass

    def run(self) -> None:
        sys.path.insert(0, os.path.join(HERE, "src"))
        try:
            from cgroup2.cli._reference import manpage
        finally:
            sys.path.pop(0)
        path = os.path.join(HERE, MAN)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(manpage())

    # what setuptools asks of a build step (editable installs too)
    def get_outputs(self) -> list[str]:
        return [os.path.join(HERE, MAN)]

    def get_source_files(self) -> list[str]:
        return []

    def get_output_mapping(self) -> dict[str, str]:
        return {}


class build_with_man(build):
    sub_commands = [("build_man", None), *build.sub_commands]  # noqa: RUF012


setup(
    cmdclass={"build": build_with_man, "build_man": build_man},
    data_files=[("share/man/man1", [MAN])],
)
