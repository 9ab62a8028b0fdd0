"""YStoreApp under uvicorn on a real socket: access, names, limits; `ystore serve` errors."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ystores import FileYStore
from ystores.cli import app as cli_app
from ystores.room import AccessDenied, YStoreApp

from .kit import node, serve_in_thread


async def authenticate(scope: MutableMapping[str, Any]) -> bool:
    query: str = scope["query_string"].decode()
    if "token=" not in query:
        raise AccessDenied("Log in first.", code=4401)
    return query == "token=good"


@pytest.fixture
def server(tmp_path: Path, node_clients: None) -> Any:
    application = YStoreApp(
        lambda name: FileYStore(name, root=tmp_path),
        authenticate=authenticate,
        max_message_size=64,
        grace_period=0,
    )
    with serve_in_thread(application) as url:
        yield url


@pytest.mark.parametrize(
    ("path", "code", "reason"),
    [
        ("/doc", 4401, "Log in first."),
        ("/doc?token=bad", 4403, "Forbidden."),
        ("/%00doc?token=good", 4400, "NUL"),
        ("//etc/passwd?token=good", 4400, "absolute"),
        ("/notes//a?token=good", 4400, "empty"),
    ],
)
def test_refused_before_joining(server: str, path: str, code: int, reason: str) -> None:
    closed = node("raw.mjs", server + path, "00000100")
    assert closed["code"] == code
    assert reason in closed["reason"]
    assert closed["received"] == 0  # nothing of the room was sent


def test_allowed_clients_sync_and_oversized_messages_close_them(server: str) -> None:
    # The room's sync step 1, then its answer to ours.
    allowed = node("raw.mjs", "--expect=2", server + "/notes/a?token=good", "00000100")
    assert allowed == {"code": 1000, "reason": "", "received": 2}
    oversized = node("raw.mjs", server + "/notes/a?token=good", "03" + "00" * 100)
    assert oversized["code"] == 1009
    assert "over the limit of 64" in oversized["reason"]


def test_room_names_follow_the_mount_point_and_django_routes(tmp_path: Path) -> None:
    application = YStoreApp(lambda name: FileYStore(name, root=tmp_path))
    assert application.room_name({"path": "/notes/a.txt", "root_path": ""}) == "notes/a.txt"
    assert application.room_name({"path": "/rooms/notes/a", "root_path": "/rooms"}) == "notes/a"
    assert application.room_name({"path": "/notes/a", "root_path": "/rooms"}) == "notes/a"
    django = {"path": "/ws/x", "url_route": {"args": (), "kwargs": {"room": "x/y"}}}
    assert application.room_name(django) == "x/y"


def test_serve_refuses_an_unknown_store_url() -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--store", "nosuch://place"])
    assert result.exit_code == 1
    assert "does not know where to store documents" in result.output


def test_a_store_that_cannot_open_refuses_clients_with_4500(
    tmp_path: Path, node_clients: None
) -> None:
    missing = tmp_path / "no such directory" / "docs.db"
    application = YStoreApp(f"sqlite:///{missing}", grace_period=0)
    with serve_in_thread(application) as url:
        for _ in range(2):  # and again on the next attempt, never writing anything
            closed = node("raw.mjs", url + "/doc", "00000100")
            assert closed["code"] == 4500
            assert closed["received"] == 0
    assert not missing.parent.exists()
