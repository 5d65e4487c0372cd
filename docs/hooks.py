"""MkDocs hooks: the CLI reference is generated from the command's argparse parser when the
site is built (``cgroup2.cli._reference.markdown``), never copied, so a new subcommand or
option appears without an edit of the page."""

from __future__ import annotations

import os
import sys
from typing import Any

MARKER = "<!-- cli-reference -->"

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "src"))


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER not in markdown:
        return markdown
    from cgroup2.cli._reference import markdown as cli_markdown

    return markdown.replace(MARKER, cli_markdown(level=2))
