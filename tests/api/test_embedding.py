"""`ActivityFeed(settings).install(app)`: the feed inside a user's own FastAPI app, served for real."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from websockets.sync.client import connect

from activity_feed.api import create_app
from activity_feed.api.feed import ActivityFeed
from activity_feed.errors import StoreUnavailableError
from activity_feed.settings import Settings
from tests.support.server import LiveServer


def user_app(lifecycle: list[str]) -> FastAPI:
    """A user's app with its own routes and a lifespan that records itself and hands out state."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        lifecycle.append("user startup")
        app.state.started_by_user = True
        yield {"greeting": "hello from the user's lifespan"}
        lifecycle.append("user shutdown")

    app = FastAPI(lifespan=lifespan)

    @app.get("/properties/{property_id}")
    async def get_property(property_id: int) -> dict[str, int]:
        return {"id": property_id}

    @app.get("/greeting")
    async def greeting(request: Request) -> dict[str, Any]:
        return {"greeting": request.state.greeting, "started": request.app.state.started_by_user}

    return app


def embedded(settings: Settings, lifecycle: list[str]) -> FastAPI:
    app = user_app(lifecycle)
    ActivityFeed(settings).install(app)  # the two-line embedding
    return app


def test_users_routes_and_lifespan_still_work(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    lifecycle: list[str] = []
    server = live_server(app=embedded(settings, lifecycle))

    with httpx.Client(base_url=server.url, timeout=5) as http:
        prop = http.get("/properties/12")
        greeting = http.get("/greeting")
        invalid = http.get("/properties/not-a-number")

    assert prop.status_code == 200
    assert prop.json() == {"id": 12}
    assert greeting.json() == {"greeting": "hello from the user's lifespan", "started": True}
    assert invalid.status_code == 422
    assert lifecycle == ["user startup"]


def test_feed_routes_stream_and_health_work_inside_the_users_app(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    server = live_server(app=embedded(settings, []))

    with (
        httpx.Client(base_url=server.url, timeout=5) as http,
        connect(f"{server.ws_url}/activities/ws", open_timeout=5, close_timeout=2) as stream,
    ):
        health = http.get("/health")
        created = http.post(
            "/activities/log",
            json={"event_type": "tool_call", "tool_name": "list_properties", "user_source": "Claude Desktop"},
        )
        message = json.loads(stream.recv(timeout=5))
        recent = http.get("/activities/recent")

    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["tool_name"] == "list_properties"
    assert message["type"] == "activity_logged"
    assert message["event"]["id"] == event["id"]
    assert message["cursor"]
    assert [e["id"] for e in recent.json()] == [event["id"]]


def test_users_lifespan_shuts_down_and_the_feed_store_is_closed(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    lifecycle: list[str] = []
    app = embedded(settings, lifecycle)
    feed: ActivityFeed = app.state.activity_feed
    first = live_server(app=app)
    with httpx.Client(base_url=first.url, timeout=5) as http:
        created = http.post("/activities/log", json={"event_type": "system_event", "tool_name": "before"})
    assert created.status_code == 201, created.text

    first.stop()

    assert not first.thread.is_alive(), "the server did not stop"
    assert lifecycle == ["user startup", "user shutdown"]
    with pytest.raises(StoreUnavailableError, match="not running"):
        asyncio.run(feed.store.ping())
    second = live_server(app=embedded(settings, []))
    with httpx.Client(base_url=second.url, timeout=5) as http:
        again = http.get(f"/activities/{created.json()['id']}")
    assert again.status_code == 200
    assert again.json()["tool_name"] == "before"


def test_installing_keeps_the_users_openapi_and_adds_the_feeds(tmp_path: Path) -> None:
    app = embedded(Settings(database_url=f"sqlite:///{tmp_path / 'openapi.db'}"), [])

    paths = app.openapi()["paths"]

    assert "/properties/{property_id}" in paths
    assert {"/activities/log", "/activities/recent", "/health"} <= set(paths)


def test_create_app_serves_docs_and_openapi(live_server: Callable[..., LiveServer], tmp_path: Path) -> None:
    server = live_server(app=create_app(Settings(database_url=f"sqlite:///{tmp_path / 'docs.db'}")))

    with httpx.Client(base_url=server.url, timeout=5) as http:
        docs = http.get("/docs")
        schema = http.get("/openapi.json")

    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "swagger" in docs.text.lower()
    assert "/openapi.json" in docs.text
    assert schema.status_code == 200
    document = schema.json()
    assert document["info"]["title"] == "Activity Feed"
    assert {"/activities/log", "/activities/recent", "/activities/{event_id}", "/health"} <= set(
        document["paths"]
    )


def test_the_page_is_the_embedding_apps_choice_and_where_it_says(
    live_server: Callable[..., LiveServer], settings: Settings
) -> None:
    from activity_feed.web import install_web

    plain = live_server(app=embedded(settings, []))
    with_page = embedded(settings, [])
    install_web(with_page, path="/feed")
    paged = live_server(app=with_page)
    with httpx.Client(timeout=5) as http:
        assert http.get(f"{plain.url}/").status_code == 404  # install() alone adds no page
        page = http.get(f"{paged.url}/feed")
        script = http.get(f"{paged.url}/ui/main.js")
        assert http.get(f"{paged.url}/properties/3").json() == {"id": 3}  # the user's routes untouched
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert 'src="ui/main.js"' in page.text  # relative: from /feed it is /ui/main.js
    assert script.status_code == 200
