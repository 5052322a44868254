"""The example HTTP API: its routes, and one `api_request` event per request in a real feed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from activity_feed.client import FeedClient
from activity_feed.examples.property_api import USER_SOURCE, create_property_api
from activity_feed.examples.property_data import PropertyData
from activity_feed.settings import Settings
from tests.examples.conftest import settled, wait_for_events
from tests.support.server import LiveServer


@pytest.fixture
def feed(live_server: Callable[..., LiveServer], settings: Settings) -> LiveServer:
    return live_server(settings)


@pytest.fixture
def api_url(live_server: Callable[..., LiveServer], feed: LiveServer, db_path: Path) -> Iterator[str]:
    client = FeedClient(feed.url)
    yield live_server(app=create_property_api(PropertyData(db_path), client=client)).url
    client.close(2.0)


def test_routes_answer_from_the_dataset(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=5.0) as http:
        leeds = http.get("/properties", params={"city": "leeds", "max_rent": 1000}).json()
        assert [p["id"] for p in leeds] == [103, 101]
        assert http.get("/properties/104").json()["tenant_count"] == 2
        missing = http.get("/properties/999")
        assert missing.status_code == 404
        assert "no property with id 999" in missing.json()["detail"]
        assert [t["name"] for t in http.get("/properties/101/tenants").json()] == [
            "Priya Shah",
            "Tom Gallagher",
        ]
        assert http.get("/properties/999/tenants").status_code == 404
        created = http.post(
            "/maintenance-requests", json={"property_id": 106, "description": "Loose tile", "priority": "low"}
        )
        assert created.status_code == 201
        assert created.json()["status"] == "open"
        listed = http.get("/maintenance-requests", params={"property_id": 106}).json()
        assert [r["description"] for r in listed] == ["Loose tile"]
        bad = http.post(
            "/maintenance-requests", json={"property_id": 106, "description": "x", "priority": "soon"}
        )
        assert bad.status_code == 422
        unknown = http.post(
            "/maintenance-requests", json={"property_id": 1, "description": "x", "priority": "low"}
        )
        assert unknown.status_code == 404
        assert http.get("/health").json() == {"status": "ok"}


async def test_each_request_is_recorded_as_an_api_request_event(api_url: str, feed: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=5.0) as http:
        assert (await http.get("/properties", params={"city": "Bristol"})).status_code == 200
        assert (await http.get("/properties/999")).status_code == 404
        body = {"property_id": 106, "description": "Door sticks", "priority": "medium"}
        assert (await http.post("/maintenance-requests", json=body)).status_code == 201
        assert (await http.get("/health")).status_code == 200  # health checks are not recorded

    events = await wait_for_events(feed.url, settled(3), event_type="api_request")
    by_path = {event["data"]["path"]: event for event in events}
    assert set(by_path) == {"/properties", "/properties/999", "/maintenance-requests"}
    assert by_path["/properties/999"]["tool_name"] == "GET /properties/{property_id}"
    assert by_path["/properties/999"]["data"]["status_code"] == 404
    assert by_path["/maintenance-requests"]["tool_name"] == "POST /maintenance-requests"
    assert by_path["/maintenance-requests"]["data"]["status_code"] == 201
    for event in events:
        assert event["user_source"] == USER_SOURCE
        assert event["duration_ms"] >= 0
