"""The alerts through the real service: a rules file of the test's own, the service under uvicorn on
SQLite, and a real webhook receiver on a local port."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.settings import Settings
from tests.support.server import LiveServer
from tests.support.webhooks import WebhookReceiver

WAIT_SECONDS = 10.0


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


def rules_file(
    path: Path, hooks: WebhookReceiver, rules: str, webhooks: dict[str, str] | None = None
) -> Path:
    """An alerts file at `path`: a webhook per name (posting to that path of `hooks`; `ops` -> /ops when
    none is given), then `rules` as written."""
    hooks_text = "".join(
        f'[[webhooks]]\nname = "{name}"\nurl = "{hooks.url(where)}"\n{extra}\n'
        for name, spec in (webhooks or {"ops": "/ops"}).items()
        for where, extra in [_split(spec)]
    )
    path.write_text(hooks_text + rules)
    return path


def _split(spec: str) -> tuple[str, str]:
    # "/path" or "/path timeout=1s": a webhook's path on the receiver, and its optional timeout.
    where, _, timeout = spec.partition(" timeout=")
    return where, f'timeout = "{timeout}"\n' if timeout else ""


class Feed:
    """The service with alerts, and a client for it."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=WAIT_SECONDS)

    def log(self, tool: str, status: str = "success", **fields: Any) -> dict[str, Any]:
        response = self.http.post(
            "/activities/log", json={"event_type": "tool_call", "tool_name": tool, "status": status, **fields}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def batch(self, events: list[dict[str, Any]]) -> None:
        response = self.http.post("/activities/batch", json={"events": events})
        assert response.status_code == 200, response.text

    def alerts(self) -> list[dict[str, Any]]:
        response = self.http.get("/activities/alerts")
        assert response.status_code == 200, response.text
        answer: list[dict[str, Any]] = response.json()
        return answer

    def wait_alerts(self, ready: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
        """`GET /activities/alerts` once `ready(answer)` (the alert's system event is written after its
        webhooks are queued, so the answer may lag a webhook by a moment)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while not ready(answer := self.alerts()):
            assert time.monotonic() < deadline, f"/activities/alerts answered {answer}"
            time.sleep(0.02)
        return answer

    def wait_alert_events(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + WAIT_SECONDS
        while len(events := self.alert_events()) < count:
            assert time.monotonic() < deadline, f"alert events in the feed: {events}"
            time.sleep(0.02)
        return events

    def alert_events(self) -> list[dict[str, Any]]:
        """The alerts' system events in the feed, oldest first."""
        response = self.http.get("/activities/recent", params={"event_type": "system_event", "limit": 500})
        assert response.status_code == 200, response.text
        return [e for e in reversed(response.json()) if (e["tool_name"] or "").startswith("alert: ")]


@pytest.fixture
def feed_with_rules(
    live_server: Callable[..., LiveServer], tmp_path: Path, hooks: WebhookReceiver
) -> Iterator[Callable[..., Feed]]:
    """Start the service with these rules (and webhooks, as `rules_file` takes them)."""
    feeds: list[Feed] = []

    def start(rules: str, webhooks: dict[str, str] | None = None) -> Feed:
        path = rules_file(tmp_path / "alerts.toml", hooks, rules, webhooks)
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://", alerts=path
        )
        feed = Feed(live_server(settings))
        feeds.append(feed)
        return feed

    yield start
    for feed in feeds:
        feed.http.close()


def states(bodies: list[dict[str, Any]], rule: str | None = None) -> list[tuple[str, str | None]]:
    """(state, tool) of each body, of one rule or all."""
    return [(body["state"], body["tool"]) for body in bodies if rule is None or body["rule"] == rule]
