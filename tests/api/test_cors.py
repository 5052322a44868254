"""CORS: off unless ACTIVITY_FEED_ALLOWED_ORIGINS lists origins; then preflights from those origins are
allowed (Authorization included) and others are not."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from activity_feed.settings import Settings
from tests.support.server import LiveServer

ALLOWED = "https://dash.example"
TOKEN = "cors-test-token"


def sqlite_settings(tmp_path: Path, **fields: Any) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path / 'feed.db'}", broadcast_url="memory://", **fields)


@pytest.fixture
def cors_server(live_server: Callable[..., LiveServer], tmp_path: Path) -> LiveServer:
    return live_server(
        sqlite_settings(tmp_path, token=TOKEN, allowed_origins=f"{ALLOWED}, https://b.example")
    )


def preflight(server: LiveServer, origin: str, method: str = "POST") -> httpx.Response:
    return httpx.options(
        f"{server.url}/activities/log",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=5,
    )


def test_a_preflight_from_an_allowed_origin_is_allowed_without_a_token(cors_server: LiveServer) -> None:
    response = preflight(cors_server, ALLOWED)

    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "POST" in response.headers["access-control-allow-methods"]


def test_a_preflight_from_another_origin_is_denied(cors_server: LiveServer) -> None:
    response = preflight(cors_server, "https://evil.example")

    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


def test_responses_to_an_allowed_origin_carry_cors_headers_even_when_refused(cors_server: LiveServer) -> None:
    # A 401 the page cannot read would look like a network error instead of a request for the token.
    with httpx.Client(base_url=cors_server.url, timeout=5, headers={"Origin": ALLOWED}) as http:
        refused = http.get("/activities/recent")
        allowed = http.get("/activities/recent", headers={"Authorization": f"Bearer {TOKEN}"})

    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    # A page may read where the stream follows on from this page.
    assert "x-stream-cursor" in allowed.headers["access-control-expose-headers"].lower()


def test_cors_is_off_by_default(live_server: Callable[..., LiveServer], tmp_path: Path) -> None:
    server = live_server(sqlite_settings(tmp_path))

    response = preflight(server, ALLOWED)
    simple = httpx.get(f"{server.url}/activities/recent", headers={"Origin": ALLOWED}, timeout=5)

    assert "access-control-allow-origin" not in response.headers
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize(
    "value",
    [
        "https://a.example,https://b.example/",
        '["https://a.example", "https://b.example"]',
        " https://a.example , https://b.example ",
    ],
    ids=["comma-separated", "json-list", "spaces"],
)
def test_allowed_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ACTIVITY_FEED_ALLOWED_ORIGINS", value)

    assert Settings().allowed_origins == ["https://a.example", "https://b.example"]


def test_a_read_token_without_a_write_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVITY_FEED_READ_TOKEN", "r")
    monkeypatch.delenv("ACTIVITY_FEED_TOKEN", raising=False)

    with pytest.raises(ValueError, match="ACTIVITY_FEED_TOKEN"):
        Settings()


def test_an_empty_token_means_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTIVITY_FEED_TOKEN", " ")

    assert Settings().token is None
