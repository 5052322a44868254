"""Cards of MCP events in a real Chromium: what each method did (resource URI, prompt name, cancelled,
server to client, JSON-RPC error code, client), safely, and the MCP event types in the type filter."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Locator, Page, expect

from tests.support.server import LiveServer
from tests.web.conftest import Console
from tests.web.support import Api

Open = Callable[..., Page]
Shoot = Callable[[Page, str], None]

CLIENT = {"name": "Claude Desktop", "version": "0.9.2"}
SERVER = {"name": "property-manager", "version": "2.1"}


def card(page: Page, event_id: str) -> Locator:
    return page.locator(f'#feed-list article.card[data-id="{event_id}"]')


def mcp(**fields: Any) -> dict[str, Any]:
    return {"mcp": {"client": CLIENT, "server": SERVER, "transport": "stdio", **fields}}


def test_each_kind_of_mcp_card_says_what_the_method_did(
    server: LiveServer, api: Api, open_page: Open, console: Console, shoot: Shoot
) -> None:
    user = "Claude Desktop 0.9.2"
    resource = api.log(
        event_type="mcp_request",
        tool_name="resources/read",
        status="success",
        duration_ms=8,
        user_source=user,
        session_id="conn-1",
        data=mcp(method="resources/read", target="file:///leases/<b>unit-4</b>.pdf", request_id=7),
    )
    prompt = api.log(
        event_type="mcp_request",
        tool_name="prompts/get summarize_lease",
        status="success",
        user_source=user,
        data=mcp(method="prompts/get", target="summarize_lease"),
    )
    cancelled = api.log(
        event_type="tool_call",
        tool_name="search_properties",
        status="error",
        error_message="cancelled: the user pressed stop",
        user_source=user,
        data=mcp(method="tools/call", target="search_properties"),
    )
    sampling = api.log(
        event_type="mcp_request",
        tool_name="sampling/createMessage",
        status="pending",
        user_source=user,
        data=mcp(method="sampling/createMessage", direction="server_to_client"),
    )
    failed = api.log(
        event_type="mcp_request",
        tool_name="resources/read",
        status="error",
        error_message="Resource not found",
        # The user named the source themselves: the card shows the MCP client as well.
        user_source="ops-dashboard",
        data=mcp(
            method="resources/read",
            target="file:///missing",
            error={"code": -32002, "message": "Resource not found"},
        ),
    )
    note = api.log(
        event_type="mcp_notification",
        tool_name="notifications/cancelled",
        status="success",
        user_source=user,
        data=mcp(method="notifications/cancelled"),
    )
    page = open_page(server.url + "/")
    expect(page.locator("#feed-list article.card")).to_have_count(6)

    chips = card(page, resource["id"]).locator(".card-mcp")
    expect(chips.locator(".chip-resource")).to_have_text("file:///leases/<b>unit-4</b>.pdf")
    expect(chips.locator(".chip-method")).to_have_count(0)  # the title already says resources/read
    expect(card(page, resource["id"])).to_have_attribute("data-type", "mcp_request")
    expect(card(page, resource["id"]).locator(".card-type")).to_have_text("MCP request")
    assert page.locator("article.card b").count() == 0

    expect(card(page, prompt["id"]).locator(".chip-prompt")).to_have_text("prompt summarize_lease")
    expect(card(page, cancelled["id"]).locator(".chip-cancelled")).to_have_text("cancelled")
    expect(card(page, cancelled["id"]).locator(".chip-method")).to_have_text("tools/call")
    expect(card(page, cancelled["id"])).to_have_attribute("data-cancelled", "true")
    expect(card(page, sampling["id"]).locator(".chip-direction")).to_have_text("server → client")
    expect(card(page, sampling["id"]).locator(".chip-cancelled")).to_have_count(0)
    expect(card(page, failed["id"]).locator(".chip-code")).to_have_text("JSON-RPC -32002")
    expect(card(page, failed["id"]).locator(".chip-code")).to_have_attribute(
        "title", "JSON-RPC error -32002: Resource not found"
    )
    expect(card(page, failed["id"]).locator(".chip-client")).to_have_text("Claude Desktop 0.9.2")
    # Where user_source is the client, it is not said twice.
    expect(card(page, resource["id"]).locator(".chip-client")).to_have_count(0)
    expect(card(page, resource["id"]).locator(".card-source")).to_have_text(user)
    expect(card(page, note["id"]).locator(".card-type")).to_have_text("MCP notification")
    expect(card(page, note["id"]).locator(".card-mcp")).to_be_hidden()  # nothing to add to its title
    # The accessible name carries the details too.
    expect(card(page, sampling["id"]).locator(".card-head")).to_have_attribute(
        "aria-label", re.compile("server → client")
    )

    # Opened, the card lists the rest of data.mcp.
    head = card(page, resource["id"]).locator(".card-head")
    head.focus()
    page.keyboard.press("Enter")
    facts = card(page, resource["id"]).locator(".facts")
    expect(facts).to_contain_text("Resource")
    expect(facts).to_contain_text("file:///leases/<b>unit-4</b>.pdf")
    expect(facts).to_contain_text("property-manager 2.1")
    expect(facts).to_contain_text("stdio")
    expect(facts.get_by_role("button", name="conn-1")).to_be_visible()
    facts.scroll_into_view_if_needed()
    shoot(page, "mcp-cards")

    # The type filter knows the MCP types.
    page.locator("select[name=event_type]").select_option(label="MCP notification")
    expect(page).to_have_url(re.compile(r"type=mcp_notification"))
    expect(page.locator("#feed-list article.card")).to_have_count(1)
    page.locator("select[name=event_type]").select_option(label="MCP request")
    expect(page.locator("#feed-list article.card")).to_have_count(4)
    console.assert_clean()


def test_a_live_card_gains_its_error_code_when_the_request_fails(
    server: LiveServer, api: Api, open_page: Open
) -> None:
    page = open_page(server.url + "/")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    event = api.log(
        event_type="mcp_request",
        tool_name="tools/list",
        status="pending",
        user_source="Cursor 1.4",
        data=mcp(method="tools/list"),
    )
    live = card(page, event["id"])
    expect(live.locator(".badge")).to_have_text("Running")
    expect(live.locator(".chip-code")).to_have_count(0)
    api.patch(
        event["id"],
        status="error",
        error_message="Method not found",
        data={"mcp": {"error": {"code": -32601, "message": "Method not found"}}},
    )
    expect(live.locator(".chip-code")).to_have_text("JSON-RPC -32601")
    expect(live.locator(".badge")).to_have_text("Error")
