"""The page on a token-protected feed: it asks for the token once (on the first 401), keeps it for the
tab's session, and loads history and the live stream with it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from activity_feed.settings import Settings
from tests.support.server import LiveServer
from tests.web.conftest import Console
from tests.web.support import Api

WRITE = "page-write-token"
READ = "page-read-token"


@pytest.fixture
def web_settings(tmp_path: Path) -> Settings:
    # Overrides the conftest's: the same SQLite service, with tokens.
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'feed.db'}",
        broadcast_url="memory://",
        token=WRITE,
        read_token=READ,
    )


@pytest.fixture
def writer(api: Api) -> Api:
    api.client.headers["Authorization"] = f"Bearer {WRITE}"
    return api


@pytest.fixture
def refusals_expected(console: Console) -> None:
    # Chromium logs every refused request to the console: the 401s that make the page ask are expected.
    console.allowed += ["401", "WebSocket connection to"]


def card(page: Page, event_id: str) -> Any:
    return page.locator(f'article.card[data-id="{event_id}"]')


def enter_token(page: Page, value: str) -> None:
    dialog = page.get_by_role("dialog", name="Access token")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Token").fill(value)
    dialog.get_by_role("button", name="Open the feed").click()


@pytest.mark.usefixtures("refusals_expected")
def test_the_page_asks_for_the_token_then_loads_the_feed(
    server: LiveServer, writer: Api, open_page: Callable[..., Page]
) -> None:
    old = writer.log(tool_name="before_the_token")
    page = open_page(server.url + "/")

    enter_token(page, READ)

    expect(card(page, old["id"])).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    live = writer.log(tool_name="after_the_token")
    expect(card(page, live["id"])).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('activity-feed-token')") == READ

    # Kept for the tab's session: a reload does not ask again.
    page.reload()
    expect(card(page, live["id"])).to_be_visible()
    expect(page.get_by_role("dialog", name="Access token")).to_have_count(0)


@pytest.mark.usefixtures("refusals_expected")
def test_a_wrong_token_is_asked_for_again(
    server: LiveServer, writer: Api, open_page: Callable[..., Page]
) -> None:
    event = writer.log(tool_name="guarded")
    page = open_page(server.url + "/")

    enter_token(page, "not-the-token")
    expect(page.get_by_role("dialog", name="Access token")).to_contain_text("refused")
    enter_token(page, WRITE)

    expect(card(page, event["id"])).to_be_visible()


@pytest.mark.usefixtures("refusals_expected")
def test_the_sessions_view_and_the_stats_chart_work_with_the_read_token(
    server: LiveServer, writer: Api, open_page: Callable[..., Page]
) -> None:
    writer.log(tool_name="search_properties", status="success", duration_ms=30, session_id="conn-read")
    page = open_page(server.url + "/?view=sessions")
    enter_token(page, READ)

    row = page.locator('#sessions-list > li[data-session-id="conn-read"]')
    expect(row).to_be_visible()
    row.get_by_role("link").click()
    expect(page.locator("#session-feed article.card")).to_have_count(1)
    expect(page.locator("#view-sessions")).to_have_attribute("data-stream", "live")
    live = writer.log(tool_name="get_property", status="success", session_id="conn-read")
    expect(page.locator(f'#session-feed article.card[data-id="{live["id"]}"]')).to_be_visible()

    page.get_by_role("tab", name="Stats").click()
    expect(page.locator("#stats-chart svg.chart")).to_be_visible()
    expect(page.get_by_role("dialog", name="Access token")).to_have_count(0)
