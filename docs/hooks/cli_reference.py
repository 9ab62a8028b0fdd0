"""MkDocs hook: put each command's `ystore NAME --help` into cli.md.

The CLI reference is generated from the commands' own help, so it cannot drift
from the code. A `<!-- ystore-help NAME -->` marker is replaced by that help
(an empty NAME gives `ystore --help`); a `## ystore NAME` section without a
marker gets it at its end. `expand` is also used by the test that checks every
command is documented.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

MARKER = re.compile(r"^<!-- ystore-help (?P<name>[a-z-]*) -->$", re.MULTILINE)
HEADING = re.compile(r"^## ystore (?P<name>[a-z-]+)\b.*$", re.MULTILINE)


def help_text(name: str) -> str:
    """The output of `ystore NAME --help` (`ystore --help` for an empty name), plain text."""
    from typer.testing import CliRunner

    from ystores.cli import app

    args = [name, "--help"] if name else ["--help"]
    result = CliRunner().invoke(
        app, args, env={"COLUMNS": "88", "TERM": "dumb", "NO_COLOR": "1"}, color=False
    )
    if result.exit_code != 0:
        raise RuntimeError(f"`ystore {' '.join(args)}` failed: {result.output}")
    return "\n".join(line.rstrip() for line in result.stdout.strip("\n").splitlines())


def _block(name: str) -> str:
    return f"```text\n{help_text(name)}\n```"


def expand(markdown: str) -> str:
    """Put each command's help in its section (see the module docstring)."""
    starts = [m.start() for m in HEADING.finditer(markdown)]
    bounds = [0, *starts, len(markdown)]
    parts = []
    for begin, end in itertools.pairwise(bounds):
        section = markdown[begin:end]
        heading = HEADING.match(section)
        if heading is not None and not MARKER.search(section):
            section = section.rstrip("\n") + "\n\n" + _block(heading["name"]) + "\n\n"
        parts.append(section)
    return MARKER.sub(lambda m: _block(m["name"]), "".join(parts))


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """MkDocs event: expand the markers of cli.md."""
    if page.file.src_uri == "cli.md":
        return expand(markdown)
    return markdown
