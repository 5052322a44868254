"""The alerts banner: shown while an alert holds, from the page's first load and live from the stream,
hidden once it resolves."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from activity_feed.settings import Settings
from tests.support.server import LiveServer
from tests.support.webhooks import WebhookReceiver
from tests.web.support import Api


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def web_settings(tmp_path: Path, hooks: WebhookReceiver) -> Settings:
    rules = tmp_path / "alerts.toml"
    rules.write_text(
        f"""
[[webhooks]]
name = "ops"
url = "{hooks.url("/ops")}"

[[rules]]
name = "leases failing"
kind = "consecutive_failures"
count = 2
webhooks = ["ops"]
"""
    )
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://", alerts=rules)


def test_the_banner_shows_alerts_while_they_hold(
    server: LiveServer, api: Api, open_page: Callable[..., Page], shoot: Callable[[Page, str], None]
) -> None:
    api.log(tool_name="get_lease", status="error")
    api.log(tool_name="get_lease", status="error")  # fires before the page opens
    page = open_page(server.url + "/")
    banner = page.locator("#alerts-banner")
    expect(banner).to_contain_text("1 alert holds")
    expect(banner).to_contain_text("leases failing: get_lease failed 2 times in a row (limit 2)")

    api.log(tool_name="list_leases", status="error")
    api.log(tool_name="list_leases", status="error")  # fires while the page is open: from the stream
    expect(banner).to_contain_text("2 alerts hold")
    expect(banner.locator("li")).to_have_count(2)
    shoot(page, "alerts-banner")

    api.log(tool_name="get_lease", status="success")
    api.log(tool_name="list_leases", status="success")
    expect(banner).to_be_hidden()
