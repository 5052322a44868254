"""The web feed at `/` in a real headless Chromium against the real service."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from activity_feed.settings import Settings
from tests.support.server import LiveServer, free_port
from tests.web.conftest import Console
from tests.web.support import Api

Open = Callable[..., Page]
Shoot = Callable[[Page, str], None]


def card(page: Page, event_id: str) -> Any:
    return page.locator(f'article.card[data-id="{event_id}"]')


def wait_live(page: Page) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_page_and_assets_are_served_from_the_package(server: LiveServer) -> None:
    page = httpx.get(server.url + "/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="ui/main.js">' in page.text
    for asset in ("main.js", "styles.css", "render/cards.js"):
        response = httpx.get(f"{server.url}/ui/{asset}")
        assert response.status_code == 200, asset
    assert httpx.get(server.url + "/ui/nope.js").status_code == 404


def test_page_loads_history(server: LiveServer, api: Api, open_page: Open, shoot: Shoot) -> None:
    api.log(tool_name="search_properties", user_source="Claude Desktop", status="success", duration_ms=85)
    api.log(tool_name="get_property", status="error", duration_ms=12, error_message="no property 77")
    api.log(tool_name="check_availability", status="pending", event_type="tool_call")
    page = open_page(server.url + "/")
    cards = page.locator("article.card")
    expect(cards).to_have_count(3)
    # Newest on top.
    expect(cards.nth(0).locator(".card-title")).to_have_text("check_availability")
    expect(cards.nth(0).locator(".badge")).to_have_text("Running")
    expect(cards.nth(1).locator(".card-error")).to_have_text("no property 77")
    expect(cards.nth(2).locator(".card-duration")).to_have_text("85 ms")
    expect(cards.nth(2).locator(".card-source")).to_have_text("Claude Desktop")
    wait_live(page)
    shoot(page, "feed")


def test_live_event_appears_and_changes_in_place(server: LiveServer, api: Api, open_page: Open) -> None:
    page = open_page(server.url + "/")
    expect(page.locator("#feed-status")).to_contain_text("No activity yet")
    wait_live(page)

    event = api.log(tool_name="schedule_viewing", status="pending", user_source="Claude Desktop")
    live = card(page, event["id"])
    expect(live).to_be_visible(timeout=1000)
    expect(live.locator(".badge")).to_have_text("Running")
    live.evaluate("node => { node.dataset.marker = 'same-node'; }")

    api.patch(event["id"], status="success", duration_ms=1532)
    expect(live.locator(".badge")).to_have_text("Success", timeout=1000)
    expect(live.locator(".card-duration")).to_have_text("1.53 s")
    # Changed in place: the same element, still one card.
    expect(live).to_have_attribute("data-marker", "same-node")
    expect(page.locator("article.card")).to_have_count(1)

    failing = api.log(tool_name="get_property", status="pending")
    expect(card(page, failing["id"])).to_be_visible(timeout=1000)
    api.patch(failing["id"], status="error", duration_ms=3, error_message="Unknown property id 404")
    failed = card(page, failing["id"])
    expect(failed.locator(".badge")).to_have_text("Error", timeout=1000)
    expect(failed.locator(".card-error")).to_have_text("Unknown property id 404")
    expect(failed).to_have_attribute("data-status", "error")
    # Newest on top.
    expect(page.locator("article.card").first).to_have_attribute("data-id", failing["id"])


def test_expanded_card_shows_escaped_data_and_filters_by_correlation(
    server: LiveServer, api: Api, open_page: Open, console: Console, shoot: Shoot
) -> None:
    hostile = '<img src=x onerror="window.__pwned=1">'
    event = api.log(
        tool_name="search_properties",
        status="success",
        duration_ms=42,
        correlation_id="conversation-7",
        data={"arguments": {"city": "Leeds", "note": hostile}, "count": 3, "ok": True, "next": None},
    )
    other = api.log(tool_name="list_tenants", status="success", correlation_id="conversation-8")
    page = open_page(server.url + "/")
    target = card(page, event["id"])
    head = target.locator(".card-head")
    expect(head).to_have_attribute("aria-expanded", "false")
    head.focus()
    page.keyboard.press("Enter")  # keyboard first: the head is a real button
    expect(head).to_have_attribute("aria-expanded", "true")
    details = target.locator(".card-details")
    expect(details).to_contain_text(event["id"])
    expect(details.locator(".json")).to_contain_text(
        '"note": ' + '"<img src=x onerror=\\"window.__pwned=1\\">"'
    )
    expect(details.locator(".json-key").first).to_have_text('"arguments"')
    expect(details.locator(".json-number")).to_have_text("3")
    expect(details.locator(".json-bool")).to_have_text("true")
    expect(details.locator(".json-null")).to_have_text("null")
    assert page.locator("article.card img").count() == 0
    assert page.evaluate("window.__pwned") is None
    shoot(page, "expanded-card")

    details.get_by_role("button", name="conversation-7").click()
    expect(page).to_have_url(re.compile(r"correlation=conversation-7"))
    expect(page.locator("#correlation-chip")).to_be_visible()
    expect(card(page, other["id"])).to_have_count(0)
    expect(page.locator("article.card")).to_have_count(1)
    console.assert_clean()


def seed_mix(api: Api) -> dict[str, str]:
    ids = {}
    ids["call_ok"] = api.log(tool_name="search_properties", user_source="alice", status="success")["id"]
    ids["call_err"] = api.log(
        tool_name="get_property", user_source="bob", status="error", error_message="database timeout"
    )["id"]
    ids["api"] = api.log(
        tool_name="GET /properties", event_type="api_request", user_source="curl", status="success"
    )["id"]
    ids["voice"] = api.log(
        tool_name="lights_on", event_type="voice_command", user_source="alice", status="pending"
    )["id"]
    return ids


def shown_ids(page: Page) -> set[str]:
    return set(page.locator("article.card").evaluate_all("cards => cards.map(c => c.dataset.id)"))


def expect_shown(page: Page, ids: set[str]) -> None:
    expect(page.locator("article.card")).to_have_count(len(ids))
    for event_id in ids:
        expect(card(page, event_id)).to_have_count(1)


def test_each_filter_applies_to_history_and_live_events(
    server: LiveServer, api: Api, open_page: Open
) -> None:
    ids = seed_mix(api)
    page = open_page(server.url + "/")
    expect(page.locator("article.card")).to_have_count(4)
    filters = page.locator("#filters")

    filters.locator("select[name=event_type]").select_option("api_request")
    expect(page).to_have_url(re.compile(r"type=api_request"))
    expect_shown(page, {ids["api"]})
    filters.locator("select[name=event_type]").select_option("")

    filters.locator("select[name=status]").select_option("error")
    expect_shown(page, {ids["call_err"]})
    filters.locator("select[name=status]").select_option("")

    filters.locator("input[name=tool_name]").fill("search_properties")
    filters.locator("input[name=tool_name]").press("Enter")
    expect_shown(page, {ids["call_ok"]})
    filters.locator("input[name=tool_name]").fill("")
    filters.locator("input[name=tool_name]").press("Enter")

    filters.locator("input[name=user_source]").fill("alice")
    filters.locator("input[name=user_source]").press("Enter")
    expect_shown(page, {ids["call_ok"], ids["voice"]})
    filters.locator("input[name=user_source]").fill("")
    filters.locator("input[name=user_source]").press("Enter")

    # Free text: over tool names and error messages, case-insensitive.
    filters.locator("input[name=q]").fill("TIMEOUT")
    expect_shown(page, {ids["call_err"]})
    filters.locator("input[name=q]").fill("lights")
    expect_shown(page, {ids["voice"]})

    # Live events pass the same filters: status is matched on each event's latest state.
    filters.locator("input[name=q]").fill("")
    filters.locator("select[name=status]").select_option("error")
    expect_shown(page, {ids["call_err"]})
    wait_live(page)
    ok = api.log(tool_name="get_property", status="success")
    bad = api.log(tool_name="get_property", status="pending")
    api.patch(bad["id"], status="error", error_message="boom")
    expect(card(page, bad["id"])).to_be_visible()
    expect_shown(page, {ids["call_err"], bad["id"]})
    assert ok["id"] not in shown_ids(page)


def test_filters_live_in_the_url_and_survive_a_reload(server: LiveServer, api: Api, open_page: Open) -> None:
    ids = seed_mix(api)
    page = open_page(server.url + "/")
    expect(page.locator("article.card")).to_have_count(4)
    page.locator("select[name=event_type]").select_option("tool_call")
    page.locator("input[name=user_source]").fill("bob")
    page.locator("input[name=user_source]").press("Enter")
    page.locator("input[name=q]").fill("database")
    expect(page).to_have_url(re.compile(r"q=database"))
    expect_shown(page, {ids["call_err"]})

    page.reload()
    expect(page.locator("select[name=event_type]")).to_have_value("tool_call")
    expect(page.locator("input[name=user_source]")).to_have_value("bob")
    expect(page.locator("input[name=q]")).to_have_value("database")
    expect_shown(page, {ids["call_err"]})

    # A bookmarked view opens as it was shared.
    shared = open_page(server.url + "/?status=pending&source=alice")
    expect(shared.locator("select[name=status]")).to_have_value("pending")
    expect_shown(shared, {ids["voice"]})
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("article.card")).to_have_count(4)
    expect(page).to_have_url(server.url + "/")


def test_pause_holds_new_events_and_counts_them(server: LiveServer, api: Api, open_page: Open) -> None:
    first = api.log(tool_name="search_properties", status="success")
    page = open_page(server.url + "/")
    expect(card(page, first["id"])).to_be_visible()
    wait_live(page)
    pause = page.locator("#pause")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")

    held = [api.log(tool_name=f"tool_{i}", status="success") for i in range(3)]
    api.patch(first["id"], status="error", error_message="changed while paused")
    expect(page.locator("#pause-count")).to_have_text("3")
    expect(page.locator("#paused-banner")).to_contain_text("3 new events")
    expect(page.locator("article.card")).to_have_count(1)
    expect(card(page, first["id"]).locator(".badge")).to_have_text("Success")

    page.keyboard.press("p")  # the keyboard shortcut resumes too
    expect(pause).to_have_attribute("aria-pressed", "false")
    expect(page.locator("article.card")).to_have_count(4)
    for event in held:
        expect(card(page, event["id"])).to_be_visible()
    expect(card(page, first["id"]).locator(".badge")).to_have_text("Error")
    expect(page.locator("#paused-banner")).to_be_hidden()


def test_reconnects_after_a_restart_and_shows_what_was_missed(
    web_settings: Settings, open_page: Open, console: Console
) -> None:
    port = free_port()
    server = LiveServer.for_settings(web_settings, port)
    server.start()
    try:
        api = Api(server.url)
        before = api.log(tool_name="before_restart", status="success")
        page = open_page(server.url + "/")
        expect(card(page, before["id"])).to_be_visible()
        wait_live(page)
        seen_live = api.log(tool_name="seen_live", status="pending")
        expect(card(page, seen_live["id"])).to_be_visible()
        api.close()
    finally:
        server.stop()

    # While the service is away the browser logs failed connection attempts; those are expected here.
    console.allowed += ["WebSocket connection to", "ERR_CONNECTION_REFUSED", "Failed to load resource"]
    expect(page.locator("#connection")).not_to_have_attribute("data-state", "live")

    # Changes made while the page was disconnected: written through another instance on the same database.
    elsewhere = LiveServer.for_settings(web_settings, free_port())
    elsewhere.start()
    try:
        other = Api(elsewhere.url)
        missed = other.log(tool_name="created_while_away", status="success")
        other.patch(seen_live["id"], status="success", duration_ms=250)
        other.close()
    finally:
        elsewhere.stop()

    server = LiveServer.for_settings(web_settings, port)
    server.start()
    try:
        # Backoff is capped at 8 s; the replay from `since` brings both changes.
        wait_live_within = 15_000
        expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=wait_live_within)
        expect(card(page, missed["id"])).to_be_visible()
        expect(card(page, seen_live["id"]).locator(".badge")).to_have_text("Success")
        after = Api(server.url)
        live_again = after.log(tool_name="after_restart", status="success")
        expect(card(page, live_again["id"])).to_be_visible(timeout=1000)
        after.close()
        expect(page.locator("article.card")).to_have_count(4)  # no duplicates
    finally:
        server.stop()


def test_timeline_and_stats_render_real_data(
    server: LiveServer, api: Api, open_page: Open, shoot: Shoot
) -> None:
    now = datetime.now(UTC)
    events = []
    for i in range(24):
        tool = ["search_properties", "get_property", "check_availability"][i % 3]
        status = "error" if i % 5 == 0 else "success"
        events.append(
            {
                "event_type": "tool_call",
                "tool_name": tool,
                "status": status,
                "timestamp": (now - timedelta(seconds=30 + i * 25)).isoformat(),
                "duration_ms": 400 + i * 900 if tool == "check_availability" else 50 + i * 10,
                "error_message": "upstream timeout" if status == "error" else None,
                "user_source": "Claude Desktop",
            }
        )
    api.batch(events)
    running = api.log(
        tool_name="schedule_viewing", status="pending", timestamp=(now - timedelta(seconds=20)).isoformat()
    )

    page = open_page(server.url + "/?view=timeline&minutes=15")
    timeline = page.locator("#timeline")
    expect(timeline.locator(".lane")).to_have_count(4)
    expect(timeline.locator(".lane-name")).to_have_text(
        ["check_availability", "get_property", "schedule_viewing", "search_properties"]
    )
    expect(timeline.locator(".bar")).to_have_count(25)
    expect(timeline.locator('.bar[data-status="error"]')).to_have_count(5)
    pending_bar = timeline.locator('.bar[data-status="pending"]')
    width = pending_bar.evaluate("b => parseFloat(b.style.width)")
    expect(pending_bar).not_to_have_attribute(
        "style", re.compile(rf"width: {width:.3f}%"), timeout=3000
    )  # it grows

    pending_bar.focus()
    tooltip = page.locator("#timeline-tooltip")
    expect(tooltip).to_be_visible()
    expect(tooltip).to_contain_text("schedule_viewing")
    expect(tooltip).to_contain_text("Running")
    error_bar = timeline.locator('.bar[data-status="error"]').first
    error_bar.hover()
    expect(tooltip).to_contain_text("upstream timeout")
    shoot(page, "timeline")
    pending_bar.click()
    expect(page.locator("#view-feed")).to_be_visible()
    expect(card(page, running["id"]).locator(".card-head")).to_have_attribute("aria-expanded", "true")
    expect(card(page, running["id"]).locator(".card-head")).to_be_focused()

    page.get_by_role("tab", name="Stats").click()
    expect(page).to_have_url(re.compile(r"view=stats"))
    stats = page.locator("#stats")
    expect(stats.locator(".kpi").first).to_contain_text("25")
    rows = stats.locator(".stats-table tbody tr")
    expect(rows).to_have_count(4)
    # Slowest first (p95), and the most failing ranked.
    expect(rows.first.locator("th")).to_have_text("check_availability")
    expect(stats.locator(".ranking").nth(1).locator("li").first).to_contain_text("%")
    shoot(page, "stats")
    stats.get_by_role("button", name="get_property").first.click()
    expect(page).to_have_url(re.compile(r"tool=get_property"))
    expect(page.locator("article.card")).to_have_count(8)


def test_narrow_screen_and_dark_theme(server: LiveServer, api: Api, open_page: Open, shoot: Shoot) -> None:
    api.log(
        tool_name="a_rather_long_tool_name_that_must_not_overflow_the_card",
        user_source="Claude Desktop 0.9.2",
    )
    api.log(tool_name="get_property", status="error", error_message="x" * 300)
    narrow = open_page(server.url + "/", width=360, height=760)
    expect(narrow.locator("article.card")).to_have_count(2)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 360
    shoot(narrow, "narrow-360")
    dark = open_page(server.url + "/", color_scheme="dark")
    expect(dark.locator("article.card")).to_have_count(2)
    background = dark.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(13, 16, 32)"
    dark.locator("article.card .card-head").first.click()
    shoot(dark, "dark")


def test_a_burst_keeps_the_dom_bounded(server: LiveServer, api: Api, open_page: Open) -> None:
    page = open_page(server.url + "/")
    wait_live(page)
    api.batch([{"tool_name": f"burst_{i % 7}", "status": "success", "duration_ms": i} for i in range(900)])
    expect(page.locator("#feed-status")).to_have_text("Scroll for older activity")
    expect(page.locator("article.card")).to_have_count(500)
    oldest = page.locator("article.card").last.get_attribute("data-id")
    # The dropped ones come back from the server (`before`) when scrolling down; the newest are dropped
    # from the top instead, and a button leads back to them.
    page.locator("#feed-sentinel").scroll_into_view_if_needed()
    expect(page.locator("article.card").last).not_to_have_attribute("data-id", oldest or "")
    expect(page.get_by_role("button", name="Back to the latest")).to_be_visible()
    expect(page.locator("article.card")).to_have_count(500)
    page.get_by_role("button", name="Back to the latest").click()
    expect(page.locator("article.card").first.locator(".card-title")).to_have_text(
        "burst_3"
    )  # the last of the batch: 899 % 7


def test_the_client_filter_offers_known_clients_and_narrows_the_feed(
    server: LiveServer, api: Api, open_page: Open
) -> None:
    cursor = api.log(tool_name="search_properties", user_source="Cursor 1.4", session_id="conn-a")
    claude = api.log(tool_name="get_property", user_source="Claude Desktop 0.9.2", session_id="conn-b")
    page = open_page(server.url + "/")
    expect(page.locator("#feed-list article.card")).to_have_count(2)
    client = page.get_by_label("Client")
    # Suggested from the sessions and the events seen.
    expect(page.locator("#source-options option[value='Cursor 1.4']")).to_have_count(1)
    expect(page.locator("#source-options option[value='Claude Desktop 0.9.2']")).to_have_count(1)
    client.fill("Cursor 1.4")
    client.press("Enter")
    expect(page).to_have_url(re.compile(r"source=Cursor\+1\.4"))
    expect(page.locator("#feed-list article.card")).to_have_count(1)
    expect(card(page, cursor["id"])).to_be_visible()
    # Live events pass the same filter.
    wait_live(page)
    # The other client's event goes first: once ours is shown, the stream has delivered both.
    api.log(tool_name="list_tenants", user_source="Claude Desktop 0.9.2")
    mine = api.log(tool_name="list_tenants", user_source="Cursor 1.4")
    expect(card(page, mine["id"])).to_be_visible()
    expect(page.locator("#feed-list article.card")).to_have_count(2)
    assert claude["id"] not in shown_ids(page)
