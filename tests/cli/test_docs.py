"""Every command has help, a section in docs/cli.md, and its generated reference there."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import typer.main

from ystores.cli import app

ROOT = Path(__file__).resolve().parents[2]


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "docs" / "hooks" / "cli_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_command_is_documented_with_its_generated_help() -> None:
    group = typer.main.get_command(app)
    names = sorted(group.commands)  # type: ignore[attr-defined]
    assert {"inspect", "ls", "verify", "export", "import", "copy"} <= set(names)
    docs = (ROOT / "docs" / "cli.md").read_text()
    hook = _hook()
    rendered = hook.expand(docs)
    assert "<!-- ystore-help" not in rendered
    for name in names:
        command = group.commands[name]  # type: ignore[attr-defined]
        assert command.help, name
        assert re.search(rf"^## ystore {name}\b", docs, re.MULTILINE), f"{name} not in docs"
        section = rendered.split(f"## ystore {name}", 1)[1].split("\n## ", 1)[0]
        assert f"Usage: ystore {name} " in section, f"no generated help for {name}"
        for param in command.params:
            for option in param.opts:
                if option.startswith("--"):
                    assert option in hook.help_text(name), (name, option)


def test_mkdocs_runs_the_hook_and_lists_the_operating_guide() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert "docs/hooks/cli_reference.py" in config
    assert "operating.md" in config
    assert (ROOT / "docs" / "operating.md").is_file()
