"""Creating events that may be second views of stored ones: created at the first free place, merged where
the caller's `combine` says two are one, each change numbered and published once, and the session summary
kept, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from activity_feed.schemas import ActivityCreate, ActivityPublic, Change, ChangeType, EventStatus, EventType
from activity_feed.store import ActivityStore
from activity_feed.store.merge import MergeItem
from tests.store.test_sessions import recounted, summarised

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def view(key: str, side: str, *, status: EventStatus = EventStatus.SUCCESS, **fields: Any) -> ActivityCreate:
    """An event that is one side's view of the thing named `key`."""
    return ActivityCreate(
        event_type=EventType.TOOL_CALL,
        tool_name=key,
        status=status,
        timestamp=fields.pop("timestamp", T0),
        data={"key": key, "views": {side: status.value}},
        **fields,
    )


def combine(stored: ActivityPublic, incoming: ActivityCreate) -> ActivityCreate | None:
    """One thing when the keys match: the views joined, failed if any failed, the earliest time."""
    if stored.data.get("key") != incoming.data.get("key"):
        return None
    views = {**incoming.data["views"], **stored.data["views"]}
    failed = EventStatus.ERROR.value in views.values()
    return incoming.model_copy(
        update={
            "data": {"key": stored.data["key"], "views": views},
            "status": EventStatus.ERROR if failed else EventStatus.SUCCESS,
            "timestamp": min(stored.timestamp, incoming.timestamp or stored.timestamp),
            "session_id": stored.session_id or incoming.session_id,
            "user_source": stored.user_source or incoming.user_source,
        }
    )


def item(event: ActivityCreate, *places: uuid.UUID) -> MergeItem:
    return MergeItem(event.model_copy(update={"id": places[0]}), places[1:])


async def merge(store: ActivityStore, *items: MergeItem) -> list[ActivityPublic | None]:
    """Merge `items`; the event each ended in, as stored now."""
    placed = await store.merge(items=items, combine=combine)
    return [None if place is None else await store.get(event_id=place) for place in placed]


async def test_a_second_view_is_merged_into_the_first_and_published_as_a_change(database_url: str) -> None:
    published: list[Change] = []
    store = ActivityStore(database_url, on_commit=published.extend)
    await store.start()
    try:
        await _merge_two_views(store, published)
    finally:
        await store.close()


async def _merge_two_views(store: ActivityStore, published: list[Change]) -> None:
    place = uuid.uuid4()
    [first] = await merge(store, item(view("a", "client"), place))
    [second] = await merge(
        store, item(view("a", "server", status=EventStatus.ERROR, timestamp=T0 - timedelta(seconds=1)), place)
    )
    assert first is not None
    assert second is not None
    assert first.id == second.id == place
    assert second.data["views"] == {"client": "success", "server": "error"}
    assert (second.status, second.timestamp) == (EventStatus.ERROR, T0 - timedelta(seconds=1))
    assert await store.get(event_id=place) == second
    assert [change.type for change in published] == [ChangeType.LOGGED, ChangeType.FAILED]
    assert published[1].event == second
    assert published[1].seq > published[0].seq


async def test_the_same_view_again_changes_nothing(store: ActivityStore) -> None:
    place = uuid.uuid4()
    [first] = await merge(store, item(view("a", "client"), place))
    cursor = await store.last_change()
    [again] = await merge(store, item(view("a", "client"), place))
    assert again == first
    assert await store.changes_since(cursor=cursor, limit=10) == []


async def test_an_item_goes_on_to_its_next_place_when_a_place_holds_something_else(
    store: ActivityStore,
) -> None:
    shared, own = uuid.uuid4(), uuid.uuid4()
    await merge(store, item(view("a", "client"), shared))
    [placed] = await merge(store, item(view("b", "client"), shared, own))
    assert placed is not None
    assert placed.id == own
    [lost] = await merge(store, item(view("c", "client"), shared))
    assert lost is None


async def test_an_event_at_a_later_place_is_preferred_to_a_free_earlier_one(store: ActivityStore) -> None:
    early, late = uuid.uuid4(), uuid.uuid4()
    await merge(store, item(view("a", "client"), late))
    [placed] = await merge(store, item(view("a", "server"), early, late))
    assert placed is not None
    assert placed.id == late
    assert await store.get(event_id=early) is None


async def test_views_in_one_request_and_in_concurrent_requests_meet(store: ActivityStore) -> None:
    together = uuid.uuid4()
    placed = await merge(store, item(view("a", "client"), together), item(view("a", "server"), together))
    assert [event.data["views"] if event else None for event in placed] == [
        {"client": "success", "server": "success"}
    ] * 2
    places = [uuid.uuid4() for _ in range(20)]
    sides = [
        merge(store, item(view(str(n), side), place))
        for n, place in enumerate(places)
        for side in ("client", "server")
    ]
    await asyncio.gather(*sides)
    for n, place in enumerate(places):
        event = await store.get(event_id=place)
        assert event is not None
        assert event.data == {"key": str(n), "views": {"client": "success", "server": "success"}}


async def test_a_merge_keeps_the_session_summary(store: ActivityStore) -> None:
    place = uuid.uuid4()
    await merge(store, item(view("a", "client"), place))
    await merge(store, item(view("a", "server", status=EventStatus.ERROR, session_id="s-1"), place))
    [session] = await store.sessions()
    assert (session.session_id, session.events, session.errors, session.pending) == ("s-1", 1, 1, 0)
    assert (await recounted(store))["s-1"][2:] == (1, 1, 0)


async def test_a_merge_that_moves_an_event_in_time_moves_its_sessions_bounds(store: ActivityStore) -> None:
    # The server's view arrives first; the client's, which started earlier, moves the event back.
    place, other = uuid.uuid4(), uuid.uuid4()
    later, last = T0 + timedelta(seconds=5), T0 + timedelta(seconds=6)
    await merge(store, item(view("a", "server", session_id="s-1", timestamp=later), place))
    await merge(store, item(view("b", "server", session_id="s-1", timestamp=last), other))
    [before] = await store.sessions()
    assert before.first_seen == later
    await merge(store, item(view("a", "client", session_id="s-1", timestamp=T0), place))
    [session] = await store.sessions()
    assert (session.first_seen, session.last_seen) == (T0, last)
    assert summarised([session]) == await recounted(store)


async def test_a_merged_view_over_the_data_limit_is_not_stored(database_url: str) -> None:
    store = ActivityStore(database_url, max_data_bytes=50)
    await store.start()
    try:
        place = uuid.uuid4()
        await merge(store, item(view("a", "client"), place))
        [lost] = await merge(store, item(view("a", "server"), place))
        assert lost is None
    finally:
        await store.close()
