"""Build hook: compile the optional C frame scanner (`ystores.filestore._framescan`).

The C loop reads the file store's frames of raw updates several times faster
than Python does (`read()` and restores). It is optional: with no C compiler,
or with `YSTORES_PURE_PYTHON=1` set, the build says so and the wheel is pure
Python, which reads the same files with the same checks, only slower.

The compiler and its flags are the interpreter's own (`sysconfig`), as for any
C extension. An editable install compiles the module next to its source; a
wheel carries it as a platform file.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = Path("src/ystores/filestore/_framescan.c")


class CustomBuildHook(BuildHookInterface):  # type: ignore[misc]
    """Compiles `_framescan.c` for wheels and editable installs; pure Python otherwise."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get("YSTORES_PURE_PYTHON") == "1":
            self.app.display_info(
                "ystores: YSTORES_PURE_PYTHON=1, the C frame scanner is not built"
            )
            return
        root = Path(self.root)
        source = root / SOURCE
        target = source.with_name("_framescan" + str(sysconfig.get_config_var("EXT_SUFFIX")))
        command = _compile_command(source, target)
        if command is None:
            self.app.display_warning(
                "ystores: no C compiler known to this Python; pure Python build"
            )
            return
        try:
            subprocess.run(command, check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            self.app.display_warning(
                f"ystores: the C frame scanner did not compile; pure Python build\n{detail}"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if version != "editable":  # an editable install imports it from the source tree
            build_data["force_include"][str(target)] = str(target.relative_to(root / "src"))


def _compile_command(source: Path, target: Path) -> list[str] | None:
    config = sysconfig.get_config_vars()
    link = config.get("LDSHARED")
    if not link:
        return None  # Windows: no compiler in sysconfig
    flags = " ".join(str(config.get(name) or "") for name in ("CFLAGS", "CCSHARED"))
    include = sysconfig.get_path("include")
    return [
        *shlex.split(str(link)),
        *shlex.split(flags),
        f"-I{include}",
        str(source),
        "-o",
        str(target),
    ]
