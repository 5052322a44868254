"""A real MCP conversation reaching the feed through OpenTelemetry alone: the official SDK's server over
stdio and its client, each in a process of its own with OpenTelemetry's SDK exporting (tests/otlp/), no
code of the feed in either. Both sides' spans of each call become one event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from activity_feed.settings import Settings
from tests.api.test_otlp import recent
from tests.otlp.mcp_client import SERVER_SERVICE_NAME
from tests.support.server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
RUN_SECONDS = 60.0
CLIENT_SERVICE_NAME = "calculator-client"
EXPECTED = ["add", "tools/list", "divide", "prompts/get explain", "prompts/get missing"]


def converse(feed: LiveServer, protocol: str) -> dict[str, Any]:
    """Run the client (which starts the server) with OpenTelemetry pointed at `feed`; what it printed."""
    environment = {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("OTEL_", "ACTIVITY_FEED_"))
        },
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "OTEL_SERVICE_NAME": CLIENT_SERVICE_NAME,
        "OTEL_EXPORTER_OTLP_ENDPOINT": feed.url,
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": protocol,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
    }
    finished = subprocess.run(
        [sys.executable, "-m", "tests.otlp.mcp_client"],
        env=environment,
        cwd=str(ROOT),
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr
    answers: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return answers


@pytest.fixture
def sqlite_feed(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    return live_server(Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://"))


@pytest.mark.parametrize("protocol", ["http/protobuf", "http/json"])
def test_an_mcp_conversation_arrives_through_opentelemetry(sqlite_feed: LiveServer, protocol: str) -> None:
    answers = converse(sqlite_feed, protocol)
    assert answers["add"] == {"is_error": False, "text": "5"}
    assert answers["divide"]["is_error"] is True
    # Both processes flushed their spans before the client printed: everything is stored by now.
    events = recent(sqlite_feed)
    named = {event["tool_name"]: event for event in events}
    assert set(EXPECTED) <= named.keys()
    for event in events:
        mcp = event["data"]["mcp"]
        # Every request was seen from both sides, and each side's views made one event.
        assert {"client_span", "server_span"} <= mcp.keys(), event
        assert mcp["server"]["name"] == SERVER_SERVICE_NAME
        assert mcp["client"]["name"] == CLIENT_SERVICE_NAME
        assert event["user_source"] == CLIENT_SERVICE_NAME
        assert event["correlation_id"] == mcp["trace_id"]
        assert mcp["server_span"]["parent_span_id"] == mcp["client_span"]["span_id"]
    assert len({event["id"] for event in events}) == len(events)

    added = named["add"]
    assert (added["event_type"], added["status"], added["error_message"]) == ("tool_call", "success", None)
    assert added["data"]["mcp"]["target"] == "add"
    assert added["data"]["mcp"]["server_span"]["protocol_version"]
    divided = named["divide"]
    assert (divided["status"], divided["data"]["mcp"]["is_error"]) == ("error", True)
    assert divided["error_message"] == "tool_error"
    missing = named["prompts/get missing"]
    assert (missing["event_type"], missing["status"]) == ("mcp_request", "error")
    assert missing["error_message"] == "Unknown prompt: missing"  # the server's reason, not the client's
    assert missing["data"]["mcp"]["error"] == {
        "code": answers["missing"]["code"],
        "message": answers["missing"]["message"],
    }
    assert named["prompts/get explain"]["status"] == "success"
