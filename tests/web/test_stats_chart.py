"""The stats view's window and chart in a real Chromium against the real service."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from tests.support.server import LiveServer
from tests.web.support import Api

Open = Callable[..., Page]
Shoot = Callable[[Page, str], None]


def seed_recent_calls(api: Api) -> None:
    """Calls over the last ten minutes, some failed, with durations; and one call two hours ago."""
    now = datetime.now(UTC)
    events = []
    for i in range(40):
        tool = ["search_properties", "get_property", "check_availability"][i % 3]
        events.append(
            {
                "tool_name": tool,
                "status": "error" if i % 6 == 0 else "success",
                "error_message": "upstream timeout" if i % 6 == 0 else None,
                "timestamp": (now - timedelta(seconds=20 + i * 14)).isoformat(),
                "duration_ms": 30 + (i % 7) * 45 + (900 if tool == "check_availability" else 0),
            }
        )
    events.append(
        {
            "tool_name": "nightly_report",
            "status": "success",
            "duration_ms": 5000,
            "timestamp": (now - timedelta(hours=2)).isoformat(),
        }
    )
    api.batch(events)


def test_the_chart_draws_calls_errors_and_percentiles_for_the_window(
    server: LiveServer, api: Api, open_page: Open, shoot: Shoot
) -> None:
    seed_recent_calls(api)
    page = open_page(server.url + "/?view=stats&window=15m")
    expect(page.locator("#stats-window")).to_have_value("15m")
    chart = page.locator("#stats-chart svg.chart")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("role", "img")
    expect(chart.locator("title")).to_have_text(
        re.compile(r"Calls, errors and durations per minute over the last 15 minutes")
    )
    expect(chart.locator("desc")).to_contain_text("40 calls and 7 errors in the last 15 minutes.")
    for series in ("chart-calls", "chart-errors", "chart-p50", "chart-p95"):
        path = chart.locator(f"path.{series}")
        expect(path).to_have_count(1)
        assert len(path.get_attribute("d") or "") > 20, series
    # One bar per minute with calls in it: every bar is a closed subpath.
    bars = chart.locator("path.chart-calls").get_attribute("d") or ""
    assert 9 <= bars.count("Z") <= 12
    expect(page.locator("#stats-chart .chart-legend li")).to_have_text(
        ["Calls", "Errors", "p50 duration", "p95 duration"]
    )
    expect(chart.locator(".chart-axis-title").first).to_have_text("calls per minute")
    # The table covers the same window: the call from two hours ago is not in it.
    expect(page.locator("#stats .stats-table tbody tr")).to_have_count(3)
    expect(page.locator("#stats-scope")).to_have_text(
        "Every tool over the last 15 minutes; refreshed while open."
    )

    # The keyboard reads out one bucket at a time.
    chart.focus()
    page.keyboard.press("End")
    readout = page.locator("#stats-chart .chart-readout")
    expect(readout).to_have_text(re.compile(r"\d+ calls? · \d+ errors?"))
    last = readout.text_content()
    page.keyboard.press("ArrowLeft")
    expect(readout).not_to_have_text(last or "")
    shoot(page, "stats-chart")

    # A wider window takes in the older call, in wider-window terms.
    page.locator("#stats-window").select_option("24h")
    expect(page).to_have_url(re.compile(r"window=24h"))
    expect(page.locator("#stats .stats-table tbody tr")).to_have_count(4)
    expect(chart.locator("desc")).to_contain_text("41 calls")
    page.locator("#stats-window").select_option("7d")
    expect(chart.locator(".chart-axis-title").first).to_have_text("calls per 7 minutes")


def test_the_chart_says_when_the_window_is_empty(server: LiveServer, api: Api, open_page: Open) -> None:
    api.log(
        tool_name="nightly_report",
        status="success",
        timestamp=(datetime.now(UTC) - timedelta(hours=3)).isoformat(),
    )
    page = open_page(server.url + "/?view=stats")
    expect(page.locator("#stats-window")).to_have_value("1h")
    expect(page.locator("#stats-chart .chart-empty")).to_have_text("No calls in the last hour.")
    expect(page.locator("#stats-chart svg")).to_have_count(0)
    expect(page.locator("#stats .empty-note")).to_have_text("No calls in the last hour.")
    page.locator("#stats-window").select_option("24h")
    expect(page.locator("#stats-chart svg.chart")).to_be_visible()
    expect(page.locator("#stats .stats-table tbody tr")).to_have_count(1)
