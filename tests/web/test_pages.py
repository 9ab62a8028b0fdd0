"""The pages YStoreApp serves over plain HTTP: editor, picker, assets, status, access."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from room.kit import serve_in_thread
from ystores import FileYStore
from ystores.room import YStoreApp
from ystores.web import token_auth

from .kit import get


@pytest.fixture
def http(tmp_path: Path) -> Iterator[str]:
    application = YStoreApp(lambda name: FileYStore(name, root=tmp_path), grace_period=0)
    with serve_in_thread(application) as url:
        yield url.replace("ws://", "http://")


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[str]:
    application = YStoreApp(
        lambda name: FileYStore(name, root=tmp_path),
        authenticate=token_auth("s3cret"),
        grace_period=0,
    )
    with serve_in_thread(application) as url:
        yield url.replace("ws://", "http://")


def config_of(page: str) -> dict[str, object]:
    start = page.index('<script id="ystores-config" type="application/json">')
    body = page[start:].split(">", 1)[1].split("</script>", 1)[0]
    value: dict[str, object] = json.loads(body)
    return value


def test_a_room_path_serves_its_editor_page(http: str) -> None:
    status, headers, body = get(http + "/notes/today")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self'" in headers["content-security-policy"]
    page = body.decode()
    assert config_of(page) == {"room": "notes/today", "base": "", "token": None}
    assert '<script src="/.ystores/editor.js"></script>' in page
    assert "http://" not in page.replace("http://HOST", "")  # nothing from elsewhere


def test_the_room_name_is_escaped_in_the_page(http: str) -> None:
    hostile = "%3C%2Fscript%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E%22%27%26"
    status, _, body = get(http + "/" + hostile)
    assert status == 200
    page = body.decode()
    assert "<script>alert(1)" not in page
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#x27;&amp;" in page
    assert config_of(page)["room"] == "</script><script>alert(1)</script>\"'&"


@pytest.mark.parametrize(
    ("path", "reason"),
    [("/notes//a", "empty"), ("/a/../b", "'..'"), ("/%00x", "NUL"), ("//etc/passwd", "absolute")],
)
def test_names_the_store_refuses_get_400(http: str, path: str, reason: str) -> None:
    status, headers, body = get(http + path)
    assert status == 400
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert reason in body.decode().replace("&#x27;", "'")


def test_the_root_picks_a_room_and_the_form_redirects_to_it(http: str) -> None:
    status, _, body = get(http + "/")
    assert status == 200
    assert 'action="/.ystores/open"' in body.decode()
    status, headers, _ = get(http + "/.ystores/open?room=notes%2Fmy+day")
    assert status == 303
    assert headers["location"] == "/notes/my%20day"
    status, _, body = get(http + "/.ystores/open?room=a%2F..%2Fb")
    assert status == 400
    assert "inside the store" in body.decode()


def test_assets_are_served_from_the_package(http: str) -> None:
    status, headers, body = get(http + "/.ystores/editor.js")
    assert status == 200
    assert headers["content-type"] == "application/javascript; charset=utf-8"
    assert headers["cache-control"] == "no-cache"
    assert b"ystoresDemo" in body
    status, headers, _ = get(http + "/.ystores/page.css")
    assert (status, headers["content-type"]) == (200, "text/css; charset=utf-8")
    assert get(http + "/.ystores/nothing.js")[0] == 404


def test_a_closed_room_reports_nothing_unsaved(http: str) -> None:
    status, headers, body = get(http + "/.ystores/status/notes/a")
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body) == {"open": False, "state_vector": None, "unsaved": 0, "error": None}


def test_pages_and_status_need_the_token_assets_do_not(guarded: str) -> None:
    for path in ("/", "/notes/a", "/.ystores/status/notes/a", "/.ystores/open?room=a"):
        status, _, body = get(guarded + path)
        assert status == 401, path
        assert b"access token" in body
        assert get(guarded + path + ("&" if "?" in path else "?") + "token=wrong")[0] == 401
    status, _, body = get(guarded + "/notes/a?token=s3cret")
    assert status == 200
    assert config_of(body.decode())["token"] == "s3cret"
    bearer = {"Authorization": "Bearer s3cret"}
    assert get(guarded + "/.ystores/status/notes/a", bearer)[0] == 200
    status, headers, _ = get(guarded + "/.ystores/open?room=a&token=s3cret")
    assert (status, headers["location"]) == (303, "/a?token=s3cret")
    assert get(guarded + "/.ystores/editor.js")[0] == 200


def test_other_methods_get_405(http: str) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(http + "/notes/a", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=20)
    assert info.value.code == 405
    assert info.value.headers["allow"] == "GET, HEAD"
    info.value.close()
