"""`activity-feed demo --via-proxy`: the example server runs behind the proxy, which records the whole
session; the server itself reports nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.test_demo import DEMO_TIMEOUT_SECONDS, demo_env, stored_events

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_session_is_recorded_by_the_proxy(tmp_path: Path) -> None:
    db = tmp_path / "feed.db"
    command = [
        sys.executable,
        "-m",
        "activity_feed.cli.main",
        "demo",
        "--via-proxy",
        "--no-wait",
        "--pace",
        "0",
    ]
    done = subprocess.run(
        [*command, "--port", "0", "--database-url", f"sqlite:///{db}"],
        cwd=tmp_path,
        env=demo_env(PYTHONPATH=str(ROOT / "src")),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    assert "through activity-feed proxy" in done.stdout
    assert "ACTIVITY_FEED_URL is not set" not in done.stderr
    mcp_events = [event for event in stored_events(db) if event["event_type"] != "api_request"]
    assert mcp_events
    assert {event["data"]["mcp"]["source"] for event in mcp_events} == {"proxy"}  # never twice
    assert len({event["session_id"] for event in mcp_events}) == 1
    assert all(event["status"] in ("success", "error") for event in mcp_events)
    tools = [event["tool_name"] for event in mcp_events if event["event_type"] == "tool_call"]
    assert tools.count("search_properties") == 3
    assert tools.count("portfolio_report") == 2
    cancelled = [event for event in mcp_events if event["tool_name"] == "portfolio_report"][-1]
    assert cancelled["error_message"].startswith("cancelled")
    repair = next(event for event in mcp_events if event["tool_name"] == "create_maintenance_request")
    assert "Harbour-2291" not in repair["data"]["arguments"]["description"]  # redacted by the proxy
