"""The editor page in headless Chromium: two browsers type into one room, a Node Yjs
client sees it, and after `ystore serve` restarts a reload shows it.

Needs Debian's `chromium` (/usr/bin/chromium) and the `playwright` package (the
`browser` extra); Playwright drives the system browser and downloads none.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from room.kit import free_port, node

from .kit import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
WAIT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"The browser test needs Chromium at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("The browser test needs Playwright: pip install -e '.[browser]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def until(page: Page, expression: str, arg: object = None) -> None:
    """Poll a JavaScript function of `arg` until it is true (bounded in time).

    `page.wait_for_function` evaluates a string in the page, which its Content
    Security Policy forbids; `evaluate` goes through the debugging protocol.
    """
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"Still false after {WAIT_MS} ms: {expression}")
        page.wait_for_timeout(50)


def synced(page: Page) -> None:
    until(page, "() => Boolean(window.ystoresDemo && window.ystoresDemo.provider.synced)")


def state_is(page: Page, state: str) -> None:
    until(page, "(state) => document.getElementById('status').dataset.state === state", state)


def text_of(page: Page) -> str:
    value: Any = page.evaluate("window.ystoresDemo.doc.getText('text').toString()")
    assert isinstance(value, str)
    return value


def wait_text(page: Page, needle: str) -> None:
    until(
        page,
        "(needle) => window.ystoresDemo.doc.getText('text').toString().includes(needle)",
        needle,
    )


def test_two_browsers_edit_one_room_and_it_survives_a_restart(
    browser: Browser, node_clients: None, tmp_path: Path
) -> None:
    port = str(free_port())
    room = "notes/browser test"
    first, second = browser.new_context(), browser.new_context()
    try:
        with serve("--port", port, cwd=tmp_path, log=tmp_path / "serve.log") as served:
            url = f"{served.http}/notes/browser%20test"
            one, two = first.new_page(), second.new_page()
            errors: list[str] = []
            for page in (one, two):
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(url)
                synced(page)
            assert one.inner_text("#room") == room

            one.click("#editor")
            one.keyboard.type("Typed in the first window.")
            wait_text(two, "Typed in the first window.")
            two.click("#editor")
            two.keyboard.press("Control+End")
            two.keyboard.type(" And in the second.")
            wait_text(one, "And in the second.")
            assert text_of(one) == text_of(two) == "Typed in the first window. And in the second."

            # Who is here, and whether it is saved.
            until(one, "() => document.querySelectorAll('#people li').length === 2")
            assert "(you)" in one.inner_text("#people")
            for page in (one, two):
                state_is(page, "saved")
            assert one.inner_text("#status") == "Saved"

            # A Node Yjs client in the same room reads the same text.
            assert node("client.mjs", "read", served.ws, room) == {"text": text_of(one)}

            ARTIFACTS.mkdir(exist_ok=True)
            one.screenshot(path=str(ARTIFACTS / "browser-editor.png"))
            assert errors == []

        # The server is gone: the page says so, and keeps its text.
        state_is(one, "offline")
        with serve("--port", port, cwd=tmp_path, log=tmp_path / "serve.log"):
            fresh = second.new_page()
            fresh.goto(url)
            synced(fresh)
            assert text_of(fresh) == "Typed in the first window. And in the second."
            one.reload()
            synced(one)
            assert text_of(one) == "Typed in the first window. And in the second."
        assert (tmp_path / "ystore.db").is_file()  # the default store: embedded SQLite
    finally:
        first.close()
        second.close()


def test_the_picker_opens_a_room_and_a_token_reaches_the_websocket(
    browser: Browser, tmp_path: Path
) -> None:
    with serve(
        "--store",
        "file://" + str(tmp_path / "docs") + "/",
        cwd=tmp_path,
        log=tmp_path / "serve.log",
        env={"YSTORE_TOKEN": "open sesame"},
    ) as served:
        context = browser.new_context()
        try:
            page = context.new_page()
            denied = page.goto(served.http + "/")
            assert denied is not None
            assert denied.status == 401
            page.goto(served.http + "/?token=open%20sesame")
            page.fill("input[name=room]", "plans/q1")
            page.click("button[type=submit]")
            synced(page)
            assert page.url.endswith("/plans/q1?token=open+sesame")
            page.click("#editor")
            page.keyboard.type("with a token")
            state_is(page, "saved")
        finally:
            context.close()
    assert (tmp_path / "docs" / "plans" / "q1").is_file()
