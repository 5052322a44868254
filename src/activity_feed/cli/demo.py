"""`activity-feed demo`: the service, the example MCP server and API, and a scripted session to watch.

The service and the example API each run under uvicorn in a background thread; the main thread plays
the session (`demo_session.py`) and then waits for Ctrl-C, which stays deliverable because nothing
blocks the main thread uninterruptibly.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import httpx

from activity_feed.api import create_app
from activity_feed.api.server import BackgroundServer, ServerStartError
from activity_feed.cli.database import migrate
from activity_feed.client import FeedClient
from activity_feed.errors import ActivityFeedError
from activity_feed.examples.property_api import create_property_api
from activity_feed.examples.property_data import PropertyData
from activity_feed.settings import Settings

if TYPE_CHECKING:
    from activity_feed.cli.demo_session import SessionReport

NO_WAIT_ENV = "ACTIVITY_FEED_DEMO_NO_WAIT"
# How long the demo waits for the last events to be committed before it reports what is in the feed.
SETTLE_TIMEOUT_SECONDS = 10.0


class DemoError(ActivityFeedError):
    """The demo could not start or finish (the MCP SDK missing, a server that did not come up)."""


def _start(server: BackgroundServer) -> None:
    # A port in use is a ListenError of its own, which says so and names --port; any other failure is
    # uvicorn's (its message is above), and not the port's.
    try:
        server.start()
    except ServerStartError as exc:
        raise DemoError(str(exc)) from exc


def no_wait_from_env() -> bool:
    return os.environ.get(NO_WAIT_ENV, "").lower() in ("1", "true", "yes")


def run_demo(
    settings: Settings,
    *,
    database_url_given: bool,
    wait: bool,
    pace: float,
    out: TextIO,
    via_proxy: bool = False,
) -> int:
    """Start everything, play the session, report, then serve until Ctrl-C (unless `wait` is False).
    `via_proxy`: the example server runs behind `activity-feed proxy`, which records it."""
    # The MCP SDK is an optional extra: say how to get it rather than fail with an ImportError.
    if importlib.util.find_spec("mcp") is None:
        raise DemoError("the demo needs the MCP SDK: pip install '.[mcp]' in Activity Feed's folder")
    from activity_feed.cli.demo_session import SessionReport

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="activity-feed-demo-")))
        if not database_url_given:
            settings = settings.model_copy(update={"database_url": f"sqlite:///{workdir / 'feed.db'}"})
        # Upgraded here first, as `serve` does, so that a database that cannot be used is one line
        # (StoreUnavailableError) rather than the service's start-up failing under uvicorn, with a traceback.
        migrate(settings.database_url, progress=None)
        feed = BackgroundServer(
            create_app(settings.model_copy(update={"migrate_on_start": False})),
            host=settings.host,
            port=settings.port,
            name="feed service",
        )
        _start(feed)
        stack.callback(feed.stop)

        api_client = FeedClient(feed.url)
        stack.callback(api_client.close, 2.0)
        data = PropertyData(workdir / "properties.db")
        api = BackgroundServer(
            create_property_api(data, client=api_client), host="127.0.0.1", port=0, name="example API"
        )
        _start(api)
        stack.callback(api.stop)

        _print_welcome(feed.url, settings.database_url, out)
        time.sleep(pace * 2)  # a moment to open the stream before the first event
        before = {event["id"] for event in _recent(feed.url)}  # a --database-url may hold older events
        report = SessionReport()
        anyio.run(_play, feed.url, api.url, data.path, pace, out, report, via_proxy)
        api_client.flush(SETTLE_TIMEOUT_SECONDS)
        _print_outcome(feed.url, report, before, out, kept=wait)
        if not wait:
            if database_url_given:
                print(
                    f"The feed stops now (--no-wait); its events stay in {settings.database_url}.", file=out
                )
            else:
                print("The feed stops now (--no-wait), and its temporary database with it.", file=out)
            return 0
        try:
            # Inside the `try`: a Ctrl-C that comes as soon as the line is read is a stop like any other.
            print(f"\nThe feed stays up at {feed.url}: press Ctrl-C to stop.", file=out, flush=True)
            while feed.thread.is_alive():
                feed.thread.join(timeout=0.5)
        except KeyboardInterrupt:
            print("\nStopping.", file=out, flush=True)
        return 0
    return 0  # pragma: no cover - mypy cannot see that ExitStack does not swallow exceptions


async def _play(
    feed_url: str,
    api_url: str,
    db_path: Path,
    pace: float,
    out: TextIO,
    report: SessionReport,
    via_proxy: bool,
) -> None:
    from activity_feed.cli.demo_session import play_api_requests, play_mcp_session

    await play_mcp_session(feed_url, db_path, pace=pace, out=out, report=report, via_proxy=via_proxy)
    await play_api_requests(api_url, pace=pace, out=out, report=report)


def _print_welcome(url: str, database_url: str, out: TextIO) -> None:
    print(
        f"""Activity Feed demo: open {url}/ to watch the feed   (database: {database_url})

  live stream   python -m websockets {url.replace("http", "ws", 1)}/activities/ws
  recent        {url}/activities/recent
  sessions      {url}/activities/sessions
  statistics    {url}/activities/stats
  API docs      {url}/docs

An assistant now uses the example property-management MCP server; every request it makes (tool calls,
a resource, a prompt, a cancelled call) appears in the feed as it starts (pending) and again as it ends
(success or error, with its duration), and the page's Sessions view groups them by connection.
""",
        file=out,
        flush=True,
    )


def _print_outcome(url: str, report: SessionReport, before: set[str], out: TextIO, *, kept: bool) -> None:
    expected = report.tool_calls + report.mcp_requests + report.api_requests
    events = _wait_for_events(url, expected, before)
    finished = sum(1 for event in events if event["status"] != "pending")
    redacted = sum(1 for event in events if event.get("data", {}).get("redacted"))
    sessions = {event["session_id"] for event in events if event.get("session_id")}
    print(
        f"\nDone: {report.tool_calls} tool calls ({report.tool_errors} failed on purpose, "
        f"{report.cancelled_calls} cancelled), {report.mcp_requests} other MCP requests, "
        f"{report.progress_notifications} progress notifications and {report.api_requests} API requests. "
        f"The feed holds {len(events)} events in {len(sessions)} MCP session, {finished} finished, "
        f"{redacted} with values redacted (secrets, and whatever is named like one)."
        + (
            f"\nSee them at {url}/ (Sessions shows the conversation) or: curl '{url}/activities/recent'"
            if kept
            else ""
        ),
        file=out,
        flush=True,
    )
    if len(events) < expected:
        print(
            "Some events have not arrived yet: the feed may be slow, or the example server did not reach it.",
            file=sys.stderr,
        )


def _recent(url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/activities/recent", params={"limit": 500}, timeout=5.0)
    response.raise_for_status()
    events: list[dict[str, Any]] = response.json()
    return events


def _wait_for_events(url: str, expected: int, before: set[str]) -> list[dict[str, Any]]:
    """The session's events once `expected` of them are there and none is pending, or when time runs out."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    events: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        events = [event for event in _recent(url) if event["id"] not in before]
        if len(events) >= expected and all(event["status"] != "pending" for event in events):
            break
        time.sleep(0.05)
    return events
