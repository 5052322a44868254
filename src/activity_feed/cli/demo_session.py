"""The session `activity-feed demo` plays: an assistant working through the example MCP server over
stdio (a real subprocess, as Claude Desktop runs it), and a few requests to the example HTTP API.

It is written as a story a new user can follow in the terminal while the feed fills: each step prints
one line, and `pace` seconds pass between steps so the live stream is easy to watch.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import anyio
import httpx
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, Implementation, TextContent

from activity_feed import __version__

CLIENT_NAME = "activity-feed-demo"
SERVER_MODULE = "activity_feed.examples.property_mcp"
CALENDAR_DELAY_SECONDS = 1.5
# Each city of the portfolio report takes this long, so its progress can be watched; the second report
# is cancelled part-way, after CANCEL_AFTER_SECONDS.
REPORT_STEP_SECONDS = 0.4
CANCEL_AFTER_SECONDS = 1.0
# Long enough for the slow tool, short enough that a broken subprocess cannot hang the demo.
CALL_TIMEOUT_SECONDS = 30.0
# What the assistant writes into a repair request; the feed must show it with the secrets redacted.
SECRET_PASSWORD = "Harbour-2291"
SECRET_API_KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a"
SECRET_DESCRIPTION = (
    "Boiler pressure keeps dropping overnight. Contractor access: key safe password="
    f"{SECRET_PASSWORD}, smart lock api key {SECRET_API_KEY}"
)


@dataclass
class SessionReport:
    """What the session did, so the demo can say what to expect in the feed."""

    tool_calls: int = 0
    tool_errors: int = 0
    mcp_requests: int = 0
    progress_notifications: int = 0
    cancelled_calls: int = 0
    api_requests: int = 0
    notes: list[str] = field(default_factory=list)


class Narrator:
    def __init__(self, out: TextIO, pace: float) -> None:
        self.out = out
        self.pace = pace

    async def step(self, text: str) -> None:
        print(text, file=self.out, flush=True)
        await anyio.sleep(self.pace)


def server_parameters(
    feed_url: str,
    db_path: Path,
    *,
    calendar_delay: float,
    report_step_delay: float = 0.0,
    via_proxy: bool = False,
) -> StdioServerParameters:
    """How to launch the example server: this interpreter, reporting to `feed_url`; or, `via_proxy`,
    behind `activity-feed proxy`, which records the conversation while the server reports nothing."""
    env = {
        "PROPERTY_DB_PATH": str(db_path),
        "PROPERTY_MCP_CALENDAR_DELAY": str(calendar_delay),
        "PROPERTY_MCP_REPORT_STEP_DELAY": str(report_step_delay),
    }
    if "PYTHONPATH" in os.environ:  # the client passes on only a few variables: keep this import path
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if not via_proxy:
        # record "all": the report's progress notifications too
        env.update(ACTIVITY_FEED_URL=feed_url, PROPERTY_MCP_RECORD="all")
        return StdioServerParameters(command=sys.executable, args=["-m", SERVER_MODULE], env=env)
    # No ACTIVITY_FEED_URL for the server itself, or each request would be recorded twice; and its
    # warning that nothing is recorded is true of the server only, so it is kept off the terminal.
    env["PROPERTY_MCP_LOG_LEVEL"] = "ERROR"
    proxy = ["-m", "activity_feed.cli.main", "proxy", "--feed-url", feed_url, "--record", "all", "--"]
    return StdioServerParameters(
        command=sys.executable, args=[*proxy, sys.executable, "-m", SERVER_MODULE], env=env
    )


async def play_mcp_session(
    feed_url: str, db_path: Path, *, pace: float, out: TextIO, report: SessionReport, via_proxy: bool = False
) -> None:
    """Drive the example MCP server through a realistic conversation's worth of tool calls."""
    narrator = Narrator(out, pace)
    params = server_parameters(
        feed_url,
        db_path,
        calendar_delay=CALENDAR_DELAY_SECONDS,
        report_step_delay=REPORT_STEP_SECONDS,
        via_proxy=via_proxy,
    )
    client_info = Implementation(name=CLIENT_NAME, version=__version__)
    async with Client(params, client_info=client_info, read_timeout_seconds=CALL_TIMEOUT_SECONDS) as client:
        tools = await client.list_tools()
        how = "through activity-feed proxy, which records it" if via_proxy else "instrumented"
        await narrator.step(
            f"MCP: connected to the example server over stdio ({how}); {len(tools.tools)} tools"
        )

        async def call(name: str, arguments: dict[str, Any], why: str) -> CallToolResult:
            result = await client.call_tool(name, arguments)
            report.tool_calls += 1
            report.tool_errors += result.is_error
            shown = ", ".join(f"{key}={value!r}" for key, value in arguments.items())
            outcome = f"error: {_text(result)}" if result.is_error else _summary(result)
            await narrator.step(f"  {name}({_shorten(shown, 70)})  ->  {outcome}\n      ({why})")
            return result

        await call("search_properties", {"city": "Leeds"}, "a tenant asks what is free in Leeds")
        await call("search_properties", {"city": "Manchester", "max_rent": 1500}, "narrowing by rent")
        await call("search_properties", {"min_bedrooms": 3, "max_rent": 2500}, "a family needs 3 bedrooms")
        await call("get_property", {"property_id": 102}, "details of the one they like")
        await call("get_property", {"property_id": 999}, "a mistyped id: the feed shows the error and why")
        await call("list_tenants", {"property_id": 101}, "who lives at 14 Hyde Park Road")
        await call("list_maintenance_requests", {"status": "open"}, "what is still waiting for a repair")
        day = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
        slots = await call(
            "check_availability",
            {"property_id": 102, "day": day},
            "a slow calendar lookup: watch it stay pending",
        )
        free = _structured(slots).get("free_slots") or [f"{day}T16:00:00+00:00"]
        await call(
            "schedule_viewing",
            {"property_id": 102, "visitor_name": "Jordan Price", "when": free[len(free) // 2]},
            "booking a viewing in a free slot",
        )
        await call(
            "create_maintenance_request",
            {"property_id": 104, "description": SECRET_DESCRIPTION, "priority": "urgent"},
            "the description holds a password and an API key: the feed shows [REDACTED]",
        )
        await call("list_maintenance_requests", {"property_id": 104}, "checking the new request is there")
        await _beyond_tools(client, narrator, report)
    report.notes.append("the MCP server subprocess has exited, after sending its last events")


async def _beyond_tools(client: Client, narrator: Narrator, report: SessionReport) -> None:
    """The rest of an MCP conversation: a resource, a prompt, progress, and a call cancelled midway."""
    resource = await client.read_resource("property://102")
    report.mcp_requests += 1
    size = sum(len(getattr(part, "text", "")) for part in resource.contents)
    await narrator.step(f"  read resource property://102  ->  {size} characters of JSON")
    try:
        await client.read_resource("property://999")
    except MCPError as exc:
        await narrator.step(
            f"  read resource property://999  ->  error {exc.error.code}: {exc.error.message}\n"
            "      (a JSON-RPC error: the feed keeps its code)"
        )
    report.mcp_requests += 1
    follow_up = {"property_id": "102", "visitor_name": "Jordan Price"}
    prompt = await client.get_prompt("viewing_follow_up", follow_up)
    report.mcp_requests += 1
    await narrator.step(
        f"  get prompt viewing_follow_up  ->  {len(prompt.messages)} message for the assistant"
    )

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        report.progress_notifications += 1
        line = f"      progress {progress:.0f}/{total or 0:.0f}: {message or ''}"
        print(line, file=narrator.out, flush=True)

    await narrator.step("  portfolio_report()  ->  a slow report that sends progress notifications")
    result = await client.call_tool("portfolio_report", {}, progress_callback=on_progress)
    report.tool_calls += 1
    await narrator.step(f"      ->  {len(_structured(result).get('cities', []))} cities")
    await narrator.step(f"  portfolio_report() again, cancelled after {CANCEL_AFTER_SECONDS:.0f} s")
    with anyio.move_on_after(CANCEL_AFTER_SECONDS) as scope:
        await client.call_tool("portfolio_report", {})
    if scope.cancelled_caught:
        report.tool_calls += 1
        report.cancelled_calls += 1
        await narrator.step("      ->  cancelled: the feed marks the call cancelled")


async def play_api_requests(api_url: str, *, pace: float, out: TextIO, report: SessionReport) -> None:
    """A few requests to the example HTTP API, each recorded as an `api_request` event."""
    narrator = Narrator(out, pace)
    await narrator.step(f"HTTP: a few requests to the example API at {api_url}")
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/properties?city=Bristol", None),
        ("GET", "/properties/106", None),
        ("GET", "/properties/106/tenants", None),
        ("GET", "/properties/404", None),
        (
            "POST",
            "/maintenance-requests",
            {"property_id": 106, "description": "Front door lock sticks", "priority": "medium"},
        ),
    ]
    async with httpx.AsyncClient(base_url=api_url, timeout=CALL_TIMEOUT_SECONDS) as http:
        for method, path, body in requests:
            response = await http.request(method, path, json=body)
            report.api_requests += 1
            await narrator.step(f"  {method} {path}  ->  {response.status_code}")


def _structured(result: CallToolResult) -> dict[str, Any]:
    content = result.structured_content
    return content if isinstance(content, dict) else {}


def _text(result: CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, TextContent))


def _summary(result: CallToolResult) -> str:
    content = _structured(result)
    if "count" in content:
        return f"{content['count']} found"
    if "free_slots" in content:
        return f"{len(content['free_slots'])} free slots"
    if "id" in content:
        return f"ok, id {content['id']}"
    return _shorten(_text(result), 60)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
