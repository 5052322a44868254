"""Helpers for the browser tests: Chromium, and REST calls to seed data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT_SECONDS = 20.0
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """Debian's Chromium (Playwright's own download is not used), or ACTIVITY_FEED_CHROMIUM."""
    configured = os.environ.get("ACTIVITY_FEED_CHROMIUM")
    if configured:
        return configured if Path(configured).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Api:
    """A few REST calls to seed and change events, through a real HTTP client."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10)

    def log(self, **fields: Any) -> dict[str, Any]:
        fields.setdefault("event_type", "tool_call")
        response = self.client.post("/activities/log", json=fields)
        response.raise_for_status()
        event: dict[str, Any] = response.json()
        return event

    def patch(self, event_id: str, **fields: Any) -> dict[str, Any]:
        response = self.client.patch(f"/activities/{event_id}", json=fields)
        response.raise_for_status()
        event: dict[str, Any] = response.json()
        return event

    def batch(self, events: list[dict[str, Any]]) -> None:
        events = [{"event_type": "tool_call", **event} for event in events]
        for start in range(0, len(events), 1000):
            response = self.client.post("/activities/batch", json={"events": events[start : start + 1000]})
            response.raise_for_status()

    def close(self) -> None:
        self.client.close()


def screenshot_dir() -> Path | None:
    folder = os.environ.get("ACTIVITY_FEED_SCREENSHOTS")
    if not folder:
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path
