"""The examples the Serving documents page shows run as written (examples/django_site is run by
test_django_server.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_client_and_server_example_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "client_and_server.py")],
        capture_output=True,
        timeout=60,
        check=False,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[server] Hello from Python.\n"
