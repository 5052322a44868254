"""Small MCP servers for the instrumentation tests: an `MCPServer` with tools, resources, a template,
a prompt and completions, and a low-level `Server` with the methods `MCPServer` does not serve.

Build them inside test functions or fixtures: `MCPServer()` configures logging on first use (see
tests/mcp/conftest.py).
"""

from __future__ import annotations

import warnings
from typing import Any

import anyio
from mcp.server import Server, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    EmptyResult,
    ListToolsResult,
    PaginatedRequestParams,
    SamplingMessage,
    SetLevelRequestParams,
    TextContent,
    Tool,
)
from pydantic import BaseModel

SERVER_NAME = "property-mcp"
SERVER_VERSION = "1.4.0"
# A tool that waits this long for a release that never comes is one the client cancels first.
SLOW_TOOL_SECONDS = 30.0


class Viewing(BaseModel):
    confirm: bool


def property_server() -> MCPServer:
    server = MCPServer(SERVER_NAME, version=SERVER_VERSION)

    @server.tool()
    async def search_properties(city: str, max_rent: int | None = None) -> str:
        await anyio.sleep(0.002)
        return f"2 properties in {city} under {max_rent}"

    @server.tool()
    def get_property(property_id: int) -> dict[str, Any]:
        if property_id != 1:
            raise LookupError(f"no property {property_id}")
        return {"id": 1, "address": "1 Park Row"}

    @server.tool()
    def long_report() -> str:
        return "x" * 5000

    @server.tool()
    def login(user: str, password: str) -> str:
        return f"welcome {user}"

    @server.tool()
    async def check_calendar(day: str) -> str:
        """Waits for the letting agent's calendar, which never answers in these tests."""
        await anyio.sleep(SLOW_TOOL_SECONDS)
        return f"{day}: free"

    @server.tool()
    async def draft_listing(property_id: int, ctx: Context) -> str:
        """Asks the client's model for a listing (sampling)."""
        result = await ctx.session.create_message(
            [SamplingMessage(role="user", content=TextContent(type="text", text=f"Describe {property_id}"))],
            max_tokens=50,
        )
        return result.content.text if isinstance(result.content, TextContent) else "?"

    @server.tool()
    async def book_viewing(property_id: int, ctx: Context) -> str:
        """Asks the user to confirm (elicitation)."""
        answer = await ctx.elicit(f"Book a viewing of {property_id}?", Viewing)
        return f"booked: {answer.action}"

    @server.tool()
    async def shared_folders(ctx: Context) -> str:
        """Asks the client for its roots."""
        roots = await ctx.session.list_roots()
        return ", ".join(str(root.uri) for root in roots.roots)

    @server.tool()
    async def count_lettings(ctx: Context) -> str:
        """Reports its progress twice (notifications the server sends the client)."""
        await ctx.report_progress(1, 2, "Leeds")
        await ctx.report_progress(2, 2, "London")
        return "2 cities"

    @server.resource("props://portfolio")
    def portfolio() -> str:
        return "101 Park Row; 102 Mill Lane"

    @server.resource("props://property/{property_id}")
    def property_page(property_id: str) -> str:
        return f"property {property_id}"

    @server.prompt()
    def summarise(city: str) -> str:
        return f"Summarise the lettings in {city}"

    @server.completion()
    async def complete(ref: Any, argument: Any, context: Any) -> Completion:
        cities = ["Leeds", "London", "Lincoln"]
        return Completion(values=[c for c in cities if c.startswith(argument.value)])

    return server


def lowlevel_server() -> Server[Any]:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
        return ListToolsResult(tools=[Tool(name="square", input_schema=schema)])

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        arguments = params.arguments or {}
        if params.name == "wait":
            await anyio.sleep(SLOW_TOOL_SECONDS)
            return CallToolResult(content=[TextContent(type="text", text="waited")])
        if params.name != "square":
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {params.name}")
        if arguments.get("n") == 13:
            raise RuntimeError("unlucky number")
        if not isinstance(arguments.get("n"), int):
            return CallToolResult(
                content=[TextContent(type="text", text="n must be an integer")], is_error=True
            )
        return CallToolResult(content=[TextContent(type="text", text=str(arguments["n"] ** 2))])

    async def set_level(ctx: ServerRequestContext[Any], params: SetLevelRequestParams) -> EmptyResult:
        return EmptyResult()

    async def complete(ctx: ServerRequestContext[Any], params: CompleteRequestParams) -> CompleteResult:
        raise MCPError(code=-32001, message="completions are switched off")

    with warnings.catch_warnings():
        # `logging/setLevel` is gone from the 2026 protocol; handshake-era clients still send it.
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return Server(
            "lowlevel-calc",
            version="0.1",
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_set_logging_level=set_level,
            on_completion=complete,
        )
