"""The example property-management MCP server, instrumented so its whole conversation reaches the feed:
tools, a resource per property and a portfolio resource, a follow-up prompt, and a slow report that
sends progress notifications (and can be cancelled).

Tools raise `ToolError` with a plain reason for anything the caller got wrong (an unknown id, a date in
the past): the SDK returns that reason as an `isError` result the assistant can read and act on, and the
instrumentation records it as the event's `error_message`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal, ParamSpec, TypeVar

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from pydantic import Field

from activity_feed import __version__
from activity_feed.examples.property_data import VIEWING_MINUTES, PropertyData, PropertyDataError
from activity_feed.mcp import RECORD_MODES, RecordMode, instrument

P = ParamSpec("P")
T = TypeVar("T")

SERVER_NAME = "property-management"
# Seconds `check_availability` spends "asking the letting agent's calendar": 0 by default, so the tool
# is instant for real use and tests; `activity-feed demo` sets it to show a slow call in the feed.
CALENDAR_DELAY_ENV = "PROPERTY_MCP_CALENDAR_DELAY"
# Seconds each of the report's steps takes (0 by default, like the calendar): the demo sets it so the
# progress notifications and a cancellation can be watched.
REPORT_STEP_DELAY_ENV = "PROPERTY_MCP_REPORT_STEP_DELAY"
# What the instrumentation records (tools, requests or all): the demo sets `all` so that the report's
# progress notifications show in the feed too.
RECORD_ENV = "PROPERTY_MCP_RECORD"
REPORT_CITIES = ("Leeds", "Manchester", "Bristol", "London", "Edinburgh")
OPENING_HOURS = (time(9, 0), time(18, 0))

INSTRUCTIONS = """\
Tools for a small letting agency's portfolio (Leeds, Manchester, Bristol, London, Edinburgh): search
properties, look one up, list its tenants and maintenance requests, report a repair, check viewing
availability and book a viewing. Rents are monthly, in pounds. Dates and times are ISO 8601, UTC."""

PropertyId = Annotated[int, Field(description="the property's id, e.g. 101 (see search_properties)")]
Priority = Literal["low", "medium", "high", "urgent"]
Status = Literal["open", "in_progress", "resolved"]


def _seconds_from_env(name: str) -> float:
    return float(os.environ.get(name) or 0)


def build_server(
    data: PropertyData | None = None,
    *,
    calendar_delay: float | None = None,
    report_step_delay: float | None = None,
) -> MCPServer:
    """The example server over `data` (default: the dataset at PROPERTY_DB_PATH), instrumented.

    Events go to ACTIVITY_FEED_URL; with it unset the server works the same and logs nothing.
    Configure logging (to stderr) before calling this: the SDK installs its own handler otherwise.
    """
    store = data if data is not None else PropertyData()
    delay = calendar_delay if calendar_delay is not None else _seconds_from_env(CALENDAR_DELAY_ENV)
    step_delay = (
        report_step_delay if report_step_delay is not None else _seconds_from_env(REPORT_STEP_DELAY_ENV)
    )
    server: MCPServer = MCPServer(SERVER_NAME, version=__version__, instructions=INSTRUCTIONS)

    @server.tool()
    def search_properties(
        city: Annotated[str | None, Field(description="city name, any case")] = None,
        max_rent: Annotated[int | None, Field(description="highest monthly rent in pounds", ge=0)] = None,
        min_bedrooms: Annotated[int | None, Field(description="fewest bedrooms", ge=0)] = None,
    ) -> dict[str, Any]:
        """Find properties by city, maximum monthly rent and minimum bedrooms, cheapest first."""
        found = _call(store.search_properties, city=city, max_rent=max_rent, min_bedrooms=min_bedrooms)
        return {"count": len(found), "properties": found}

    @server.tool()
    def get_property(property_id: PropertyId) -> dict[str, Any]:
        """One property's details, with its tenant count and open maintenance requests."""
        return _call(store.get_property, property_id)

    @server.tool()
    def list_tenants(property_id: PropertyId) -> dict[str, Any]:
        """The current tenants of a property, with contact details and lease dates."""
        tenants = _call(store.list_tenants, property_id)
        return {"property_id": property_id, "count": len(tenants), "tenants": tenants}

    @server.tool()
    def list_maintenance_requests(
        property_id: Annotated[int | None, Field(description="only this property's requests")] = None,
        status: Annotated[Status | None, Field(description="only requests in this state")] = None,
    ) -> dict[str, Any]:
        """Maintenance requests, newest first, optionally for one property and of one status."""
        found = _call(store.list_maintenance_requests, property_id=property_id, status=status)
        return {"count": len(found), "requests": found}

    @server.tool()
    def create_maintenance_request(
        property_id: PropertyId,
        description: Annotated[str, Field(description="what is wrong, and how to get in", min_length=1)],
        priority: Annotated[Priority, Field(description="urgent: no heating, water or security")],
    ) -> dict[str, Any]:
        """Report a repair at a property; it starts in the `open` state."""
        return _call(
            store.create_maintenance_request,
            property_id=property_id,
            description=description,
            priority=priority,
        )

    @server.tool()
    async def check_availability(
        property_id: PropertyId,
        day: Annotated[date, Field(description="the day to check, e.g. 2030-05-01")],
    ) -> dict[str, Any]:
        """Free 30-minute viewing slots at a property on one day (09:00 to 18:00 UTC), from the
        letting agent's calendar."""
        viewings = _call(store.list_viewings, property_id)
        await anyio.sleep(delay)  # the calendar is a slow remote service in the story; async, so not blocking
        return {"property_id": property_id, "day": day.isoformat(), "free_slots": _free_slots(day, viewings)}

    @server.tool()
    def schedule_viewing(
        property_id: PropertyId,
        visitor_name: Annotated[str, Field(description="who is coming", min_length=1)],
        when: Annotated[str, Field(description="start, ISO 8601 in the future, e.g. 2030-05-01T14:30:00Z")],
    ) -> dict[str, Any]:
        """Book a 30-minute viewing of a property for a visitor."""
        return _call(store.schedule_viewing, property_id=property_id, visitor_name=visitor_name, when=when)

    @server.tool()
    async def portfolio_report(ctx: Context) -> dict[str, Any]:
        """Rent and open repairs per city across the portfolio; reports its progress city by city."""
        cities = []
        for done, city in enumerate(REPORT_CITIES):
            await ctx.report_progress(done, len(REPORT_CITIES), f"counting {city}")
            await anyio.sleep(step_delay)  # each city is a slow query in the story
            homes = store.search_properties(city=city)
            rents = [home["monthly_rent"] for home in homes]
            cities.append({"city": city, "properties": len(homes), "total_rent": sum(rents)})
        await ctx.report_progress(len(REPORT_CITIES), len(REPORT_CITIES), "done")
        return {"cities": cities}

    @server.resource(
        "property://{property_id}",
        name="property",
        description="one property's details as JSON",
        mime_type="application/json",
    )
    def property_resource(property_id: str) -> dict[str, Any]:
        # An unknown property is the client's mistake: a JSON-RPC error (-32602) with the reason.
        try:
            return store.get_property(int(property_id))
        except (ValueError, PropertyDataError) as exc:
            raise ResourceNotFoundError(f"no property {property_id}: {exc}") from exc

    @server.resource("portfolio://summary", name="portfolio", description="how many properties in each city")
    def portfolio_resource() -> str:
        counts = {city: len(store.search_properties(city=city)) for city in REPORT_CITIES}
        return "\n".join(f"{city}: {count} properties" for city, count in counts.items())

    @server.prompt(title="Viewing follow-up")
    def viewing_follow_up(property_id: str, visitor_name: str) -> str:
        """A message to a visitor after their viewing, with the property's details."""
        home = _call(store.get_property, int(property_id))
        return (
            f"Write a short, friendly follow-up to {visitor_name}, who viewed {home['address']} "
            f"({home['bedrooms']} bedrooms, {home['monthly_rent']} pounds a month). Offer to answer "
            "questions and explain how to apply."
        )

    instrument(server, record=_record_mode())
    return server


def _record_mode() -> RecordMode:
    value = os.environ.get(RECORD_ENV) or "requests"
    if value not in RECORD_MODES:
        raise ValueError(f"{RECORD_ENV} must be one of {', '.join(RECORD_MODES)}, not {value!r}")
    return value


def _call(function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    # The dataset's errors are written for the caller: pass their text on as a tool error. Anything
    # else is a bug, which the SDK reports without its text (it may hold internals) and logs.
    try:
        return function(*args, **kwargs)
    except PropertyDataError as exc:
        raise ToolError(str(exc)) from exc


def _free_slots(day: date, viewings: list[dict[str, Any]]) -> list[str]:
    booked = [datetime.fromisoformat(viewing["starts_at"]) for viewing in viewings]
    now = datetime.now(UTC)
    slot = datetime.combine(day, OPENING_HOURS[0], tzinfo=UTC)
    closing = datetime.combine(day, OPENING_HOURS[1], tzinfo=UTC)
    length = timedelta(minutes=VIEWING_MINUTES)
    free = []
    while slot + length <= closing:
        if slot > now and all(abs(slot - other) >= length for other in booked):
            free.append(slot.isoformat())
        slot += length
    return free
