"""Per-event limits: `data` at most 64 KiB serialised (413 saying so; a batch is refused whole, naming the
item), also after an update's `data` is merged into the stored object, and string fields bounded (422)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.server import LiveServer

DATA_LIMIT = 64 * 1024


@pytest.fixture
def client(feed_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=feed_server.url, timeout=10) as http:
        yield http


def data_of(size: int) -> dict[str, Any]:
    """A `data` object whose compact JSON is exactly `size` bytes."""
    overhead = len(orjson.dumps({"pad": ""}))
    data = {"pad": "p" * (size - overhead)}
    assert len(orjson.dumps(data)) == size
    return data


def assert_data_too_large(response: httpx.Response, where: str) -> None:
    assert response.status_code == 413, response.text
    detail = response.json()["detail"]
    assert where in detail
    assert str(DATA_LIMIT) in detail


def test_data_at_the_limit_is_stored(client: httpx.Client) -> None:
    response = client.post("/activities/log", json={"event_type": "tool_call", "data": data_of(DATA_LIMIT)})

    assert response.status_code == 201, response.text
    assert response.json()["data"] == data_of(DATA_LIMIT)


def test_data_over_the_limit_answers_413_saying_so(client: httpx.Client) -> None:
    response = client.post(
        "/activities/log", json={"event_type": "tool_call", "data": data_of(DATA_LIMIT + 1)}
    )

    assert_data_too_large(response, "data")
    assert client.get("/activities/recent").json() == []


def test_a_batch_with_one_item_over_the_limit_is_refused_whole(client: httpx.Client) -> None:
    events = [{"event_type": "tool_call", "data": {"i": i}} for i in range(5)]
    events[3]["data"] = data_of(DATA_LIMIT + 1)

    response = client.post("/activities/batch", json={"events": events})

    assert_data_too_large(response, "events[3].data")
    assert client.get("/activities/recent").json() == []


def test_updates_are_limited_too(client: httpx.Client) -> None:
    created = client.post("/activities/log", json={"event_type": "tool_call"}).json()
    too_big = data_of(DATA_LIMIT + 1)

    patched = client.patch(f"/activities/{created['id']}", json={"data": too_big})
    batched = client.post(
        "/activities/batch",
        json={"updates": [{"id": str(uuid.uuid4())}, {"id": created["id"], "data": too_big}]},
    )

    assert_data_too_large(patched, "data")
    assert_data_too_large(batched, "updates[1].data")
    assert client.get(f"/activities/{created['id']}").json()["data"] == {}


def test_a_patch_whose_merge_would_grow_data_past_the_limit_is_refused_and_changes_nothing(
    client: httpx.Client,
) -> None:
    half = {"first": "a" * (DATA_LIMIT // 2)}
    created = client.post("/activities/log", json={"event_type": "tool_call", "data": half}).json()

    refused = client.patch(
        f"/activities/{created['id']}",
        json={"status": "success", "data": {"second": "b" * (DATA_LIMIT // 2)}},
    )
    within = client.patch(f"/activities/{created['id']}", json={"data": {"second": "small"}})

    assert refused.status_code == 413, refused.text
    assert "after merging" in refused.json()["detail"]
    assert str(DATA_LIMIT) in refused.json()["detail"]
    assert within.status_code == 200, within.text
    stored = client.get(f"/activities/{created['id']}").json()
    assert stored["status"] == "pending"  # the refused update changed nothing, not even its status
    assert stored["data"] == {**half, "second": "small"}


def test_a_batch_counts_updates_whose_merge_would_be_too_large_and_applies_the_rest(
    client: httpx.Client,
) -> None:
    big = client.post(
        "/activities/log", json={"event_type": "tool_call", "data": {"a": "a" * (DATA_LIMIT // 2)}}
    ).json()
    small = client.post("/activities/log", json={"event_type": "tool_call"}).json()
    growth = {"b": "b" * (DATA_LIMIT // 2)}

    response = client.post(
        "/activities/batch",
        json={"updates": [{"id": big["id"], "data": growth}, {"id": small["id"], "data": growth}]},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"created": 0, "existing": 0, "updated": 1, "missing": 0, "too_large": 1}
    assert client.get(f"/activities/{big['id']}").json()["data"].keys() == {"a"}
    assert client.get(f"/activities/{small['id']}").json()["data"] == growth


@pytest.mark.parametrize(
    ("field", "limit"),
    [("tool_name", 200), ("user_source", 200), ("correlation_id", 200), ("error_message", 10_000)],
)
def test_string_fields_are_bounded(client: httpx.Client, field: str, limit: int) -> None:
    at_limit = client.post("/activities/log", json={"event_type": "tool_call", field: "a" * limit})
    over = client.post("/activities/log", json={"event_type": "tool_call", field: "a" * (limit + 1)})

    assert at_limit.status_code == 201, at_limit.text
    assert over.status_code == 422
    assert field in over.text
    assert [event["id"] for event in client.get("/activities/recent").json()] == [at_limit.json()["id"]]
