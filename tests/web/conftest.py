"""Browser fixtures: Debian's Chromium driven by Playwright (sync API, plain `def` tests), the service on
SQLite only (the browser tests are about the page; the API tests cover PostgreSQL), console watching."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Playwright, expect, sync_playwright

from activity_feed.settings import Settings
from tests.support.requirements import unavailable
from tests.support.server import LiveServer
from tests.web.support import CHROMIUM_ARGS, Api, chromium_path, screenshot_dir

# Auto-waiting assertions wait at most this long unless a test says otherwise: bounded, never a sleep.
expect.set_options(timeout=5000)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    path = chromium_path()
    if path is None:
        unavailable("Chromium is not installed (apt-get install chromium, or set ACTIVITY_FEED_CHROMIUM)")
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://")


@pytest.fixture
def server(web_settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer.for_settings(web_settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(server: LiveServer) -> Iterator[Api]:
    client = Api(server.url)
    yield client
    client.close()


class Console:
    """Every console error and uncaught page error; tests assert there are none."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.allowed: list[str] = []

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning") and not any(a in message.text for a in self.allowed):
            self.problems.append(f"console.{message.type}: {message.text}")

    def on_page_error(self, error: Error) -> None:
        self.problems.append(f"page error: {error}")

    def assert_clean(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def open_page(browser: Browser, console: Console) -> Iterator[Callable[..., Page]]:
    """Open the page in a fresh context (own storage, own colour scheme and size)."""
    contexts: list[Any] = []

    def open_(url: str, *, width: int = 1100, height: int = 900, color_scheme: Any = "light") -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": height}, color_scheme=color_scheme, reduced_motion="reduce"
        )
        contexts.append(context)
        page = context.new_page()
        page.on("console", console.on_console)
        page.on("pageerror", console.on_page_error)
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
    console.assert_clean()


@pytest.fixture
def shoot() -> Callable[[Page, str], None]:
    """Save a screenshot to ACTIVITY_FEED_SCREENSHOTS, for review; nothing when it is unset."""

    def save(page: Page, name: str) -> None:
        folder = screenshot_dir()
        if folder is not None:
            page.screenshot(path=str(folder / f"{name}.png"), full_page=False)

    return save
