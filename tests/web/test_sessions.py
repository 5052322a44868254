"""The Sessions view in a real Chromium against the real service: the list, one session's events and
timeline, and both staying live."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.support.server import LiveServer
from tests.web.support import Api

Open = Callable[..., Page]
Shoot = Callable[[Page, str], None]

ALPHA = "conn-alpha-7f3a"
BETA = "conn-beta-19c2"


def mcp(client: str, version: str, server: str) -> dict[str, Any]:
    return {
        "mcp": {"client": {"name": client, "version": version}, "server": {"name": server, "version": "1.0"}}
    }


def seed_two_sessions(api: Api) -> dict[str, list[str]]:
    """ALPHA (older, three calls, one failed), BETA (newer, two calls, one running), and one event in no
    session. Timestamps are apart so the order is certain."""
    now = datetime.now(UTC)
    at = lambda seconds: (now - timedelta(seconds=seconds)).isoformat()  # noqa: E731
    alpha_data = mcp("Claude Desktop", "0.9.2", "property-manager")
    beta_data = mcp("Cursor", "1.4", "calendar")
    ids: dict[str, list[str]] = {ALPHA: [], BETA: [], "none": []}
    for seconds, tool, status, error in [
        (600, "search_properties", "success", None),
        (540, "get_property", "error", "no property 77"),
        (480, "resources/read", "success", None),
    ]:
        # The resource read is recorded as `instrument()` records one: an MCP request naming its URI.
        reading = tool == "resources/read"
        method = {"method": tool, "target": "property://77"} if reading else {}
        ids[ALPHA].append(
            api.log(
                tool_name=tool,
                event_type="mcp_request" if reading else "tool_call",
                status=status,
                error_message=error,
                duration_ms=40,
                timestamp=at(seconds),
                session_id=ALPHA,
                user_source="Claude Desktop 0.9.2",
                data={"mcp": {**alpha_data["mcp"], **method}},
            )["id"]
        )
    ids["none"].append(api.log(tool_name="GET /health", event_type="api_request", status="success")["id"])
    for seconds, tool, status in [(120, "list_events", "success"), (60, "book_slot", "pending")]:
        ids[BETA].append(
            api.log(
                tool_name=tool,
                status=status,
                duration_ms=25 if status == "success" else None,
                timestamp=at(seconds),
                session_id=BETA,
                user_source="Cursor 1.4",
                data=beta_data,
            )["id"]
        )
    return ids


def rows(page: Page) -> Locator:
    return page.locator("#sessions-list > li")


def session_cards(page: Page) -> Locator:
    return page.locator("#session-feed article.card")


def wait_sessions_live(page: Page) -> None:
    expect(page.locator("#view-sessions")).to_have_attribute("data-stream", "live")


def test_sessions_are_listed_most_recent_first_and_open_to_their_own_events(
    server: LiveServer, api: Api, open_page: Open, shoot: Shoot
) -> None:
    ids = seed_two_sessions(api)
    page = open_page(server.url + "/")
    page.get_by_role("tab", name="Sessions").click()
    expect(page).to_have_url(re.compile(r"view=sessions"))

    expect(rows(page)).to_have_count(2)
    expect(rows(page).nth(0)).to_have_attribute("data-session-id", BETA)
    expect(rows(page).nth(1)).to_have_attribute("data-session-id", ALPHA)
    beta, alpha = rows(page).nth(0), rows(page).nth(1)
    expect(beta.locator(".session-client")).to_have_text("Cursor 1.4")
    expect(beta.locator(".session-server")).to_have_text("→ calendar")
    expect(beta.locator(".session-count[data-kind=pending]")).to_have_text("1 running")
    expect(alpha.locator(".session-client")).to_have_text("Claude Desktop 0.9.2")
    expect(alpha.locator(".session-id")).to_have_text(ALPHA)
    expect(alpha.locator(".session-count[data-kind=events]")).to_have_text("3 events")
    expect(alpha.locator(".session-count[data-kind=errors]")).to_have_text("1 error")
    expect(alpha.locator(".session-when")).to_contain_text("spans 2 min")  # how long it lasted
    expect(page.locator("#sessions-more")).to_be_hidden()
    shoot(page, "sessions")

    # Keyboard: the rows are links.
    alpha.get_by_role("link").focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"session={ALPHA}"))
    detail = page.locator("#session-detail")
    expect(detail).to_be_visible()
    expect(page.locator("#sessions-list-panel")).to_be_hidden()
    expect(page.locator("#session-title")).to_have_text("Claude Desktop 0.9.2")
    expect(page.locator("#session-summary")).to_contain_text("property-manager")
    expect(session_cards(page)).to_have_count(3)
    assert set(session_cards(page).evaluate_all("cs => cs.map(c => c.dataset.id)")) == set(ids[ALPHA])
    timeline = page.locator("#session-timeline")
    expect(timeline.locator(".bar")).to_have_count(3)
    expect(timeline.locator('.bar[data-status="error"]')).to_have_count(1)
    expect(timeline.locator(".lane-name")).to_have_text(
        ["get_property", "resources/read", "search_properties"]
    )
    wait_sessions_live(page)
    shoot(page, "session")

    # Live: the open session's new events arrive; other sessions' do not.
    later = api.log(
        tool_name="schedule_viewing", status="pending", session_id=ALPHA, user_source="Claude Desktop 0.9.2"
    )
    api.log(tool_name="list_events", status="success", session_id=BETA, user_source="Cursor 1.4")
    expect(page.locator(f'#session-feed article.card[data-id="{later["id"]}"]')).to_be_visible()
    expect(timeline.locator(".bar")).to_have_count(4)
    api.patch(later["id"], status="success", duration_ms=120)
    expect(page.locator(f'#session-feed article.card[data-id="{later["id"]}"] .badge')).to_have_text(
        "Success"
    )
    expect(session_cards(page)).to_have_count(4)
    # The summary catches up with the new counts.
    expect(page.locator("#session-summary .session-count[data-kind=events]")).to_have_text(
        "4 events", timeout=8000
    )

    # A timeline bar opens its card in the session's feed.
    timeline.locator('.bar[data-status="error"]').click()
    error_card = page.locator(f'#session-feed article.card[data-id="{ids[ALPHA][1]}"]')
    expect(error_card.locator(".card-head")).to_have_attribute("aria-expanded", "true")

    # Back returns to the list, with the activity since: BETA's last event came after ALPHA's.
    page.go_back()
    expect(page.locator("#sessions-list-panel")).to_be_visible()
    expect(rows(page).nth(0)).to_have_attribute("data-session-id", BETA)
    expect(rows(page).nth(0).locator(".session-count[data-kind=events]")).to_have_text("3 events")
    expect(rows(page).nth(1).locator(".session-count[data-kind=events]")).to_have_text("4 events")
    expect(page.locator("#session-detail")).to_be_hidden()


def test_a_session_opens_from_its_url_and_from_a_card(server: LiveServer, api: Api, open_page: Open) -> None:
    ids = seed_two_sessions(api)
    page = open_page(f"{server.url}/?view=sessions&session={BETA}")
    expect(session_cards(page)).to_have_count(2)
    expect(page.locator("#session-summary")).to_contain_text("calendar")
    page.locator("#session-back").click()
    expect(rows(page)).to_have_count(2)
    expect(page).not_to_have_url(re.compile("session="))

    # From the feed: an opened card names its session, which opens the Sessions view on it.
    page.get_by_role("tab", name="Feed").click()
    head = page.locator(f'#feed-list article.card[data-id="{ids[ALPHA][0]}"] .card-head')
    head.click()
    page.locator("#feed-list .card-details").get_by_role("button", name=ALPHA).click()
    expect(page).to_have_url(re.compile(rf"view=sessions.*session={ALPHA}"))
    expect(session_cards(page)).to_have_count(3)


def test_a_new_session_appears_live(server: LiveServer, api: Api, open_page: Open) -> None:
    seed_two_sessions(api)
    page = open_page(server.url + "/?view=sessions")
    expect(rows(page)).to_have_count(2)
    wait_sessions_live(page)
    api.log(tool_name="initialize", status="success", session_id="conn-gamma", user_source="Zed 0.200")
    expect(rows(page)).to_have_count(3)
    expect(rows(page).nth(0)).to_have_attribute("data-session-id", "conn-gamma")
    expect(rows(page).nth(0).locator(".session-client")).to_have_text("Zed 0.200")
    # Events without a session are in no session.
    api.log(tool_name="GET /properties", event_type="api_request", status="success")
    api.log(tool_name="initialize", status="success", session_id="conn-delta", user_source="Zed 0.200")
    expect(rows(page)).to_have_count(4)


def test_more_sessions_load_with_before(server: LiveServer, api: Api, open_page: Open) -> None:
    now = datetime.now(UTC)
    api.batch(
        [
            {
                "tool_name": "initialize",
                "status": "success",
                "session_id": f"conn-{i:03}",
                "timestamp": (now - timedelta(seconds=i)).isoformat(),
            }
            for i in range(57)
        ]
    )
    page = open_page(server.url + "/?view=sessions")
    expect(rows(page)).to_have_count(50)
    expect(rows(page).first).to_have_attribute("data-session-id", "conn-000")
    more = page.get_by_role("button", name="Load more sessions")
    more.click()
    expect(rows(page)).to_have_count(57)
    expect(rows(page).last).to_have_attribute("data-session-id", "conn-056")
    expect(more).to_be_hidden()
    expect(page.locator("#sessions-status")).to_have_text("That is every session.")


def test_no_sessions_says_so(server: LiveServer, api: Api, open_page: Open) -> None:
    api.log(tool_name="search_properties", status="success")
    page = open_page(server.url + "/?view=sessions")
    expect(page.locator("#sessions-status")).to_contain_text("No sessions yet")
    expect(rows(page)).to_have_count(0)
