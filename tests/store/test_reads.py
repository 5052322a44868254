"""Reads: the recent list, its filters, `before` paging, timestamps, per-tool stats, replay by cursor."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

import anyio
import pytest

from activity_feed.errors import ReferenceNotFoundError
from activity_feed.schemas import (
    ActivityCreate,
    ActivityPublic,
    ActivityUpdate,
    ChangeType,
    DeletedEvent,
    EventStatus,
    EventType,
    ToolStats,
)
from activity_feed.store import ActivityStore, RecentQuery

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def add(store: ActivityStore, **fields: Any) -> ActivityPublic:
    fields.setdefault("event_type", EventType.TOOL_CALL)
    event, created = await store.create(event=ActivityCreate(**fields))
    assert created
    return event


def ids(events: list[ActivityPublic]) -> list[uuid.UUID]:
    return [event.id for event in events]


async def test_recent_is_newest_first_by_timestamp(store: ActivityStore) -> None:
    offsets = [5, 1, 9, 3, 7]
    events = [await add(store, timestamp=T0 + timedelta(minutes=m)) for m in offsets]

    result = await store.recent(query=RecentQuery())

    expected = [e for _, e in sorted(zip(offsets, events, strict=True), key=lambda p: p[0], reverse=True)]
    assert ids(result) == ids(expected)


async def test_recent_breaks_timestamp_ties_by_insertion_newest_first(store: ActivityStore) -> None:
    older = await add(store, timestamp=T0 - timedelta(seconds=1))
    tied = [await add(store, timestamp=T0, tool_name=f"t{i}") for i in range(4)]

    result = await store.recent(query=RecentQuery())

    assert ids(result) == [*ids(tied[::-1]), older.id]


async def test_recent_honours_limit(store: ActivityStore) -> None:
    events = [await add(store, timestamp=T0 + timedelta(seconds=i)) for i in range(6)]

    assert ids(await store.recent(query=RecentQuery(limit=2))) == [events[5].id, events[4].id]


FILTERS: list[tuple[str, Any]] = [
    ("event_type", EventType.VOICE_COMMAND),
    ("status", EventStatus.ERROR),
    ("tool_name", "search"),
    ("user_source", "Claude Desktop"),
    ("correlation_id", "req-1"),
]


@pytest.mark.parametrize(("name", "value"), FILTERS, ids=[name for name, _ in FILTERS])
async def test_recent_filter_matches_exactly(store: ActivityStore, name: str, value: Any) -> None:
    rng = random.Random(7)
    choices: dict[str, list[Any]] = {
        "event_type": list(EventType),
        "status": list(EventStatus),
        "tool_name": ["search", "Search", "search2", None],
        "user_source": ["Claude Desktop", "claude desktop", None],
        "correlation_id": ["req-1", "req-10", None],
    }
    events = []
    for i in range(40):
        fields = {key: rng.choice(options) for key, options in choices.items()}
        events.append(await add(store, timestamp=T0 + timedelta(seconds=i), **fields))
    expected = [e for e in reversed(events) if getattr(e, name) == value]
    assert expected, "the random data must contain matches"

    result = await store.recent(query=RecentQuery(limit=500, **{name: value}))

    assert ids(result) == ids(expected)


async def test_recent_filters_combine(store: ActivityStore) -> None:
    match = await add(store, tool_name="a", status=EventStatus.ERROR)
    await add(store, tool_name="a", status=EventStatus.SUCCESS)
    await add(store, tool_name="b", status=EventStatus.ERROR)

    result = await store.recent(query=RecentQuery(tool_name="a", status=EventStatus.ERROR))

    assert ids(result) == [match.id]


async def test_before_pages_through_every_event_without_gap_or_duplicate(store: ActivityStore) -> None:
    # Several events share a timestamp, so paging must use the insertion order as well.
    for i in range(23):
        await add(store, timestamp=T0 + timedelta(seconds=i // 4))
    everything = await store.recent(query=RecentQuery(limit=500))

    pages: list[list[ActivityPublic]] = []
    before: uuid.UUID | None = None
    while True:
        page = await store.recent(query=RecentQuery(limit=5, before=before))
        if not page:
            break
        pages.append(page)
        before = page[-1].id
        assert len(pages) <= 10, "paging does not end"

    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [e.id for page in pages for e in page] == ids(everything)


async def test_before_applies_together_with_a_filter(store: ActivityStore) -> None:
    events = [await add(store, tool_name="x" if i % 2 else "y") for i in range(10)]
    xs = [e for e in reversed(events) if e.tool_name == "x"]

    result = await store.recent(query=RecentQuery(tool_name="x", before=xs[1].id))

    assert ids(result) == ids(xs[2:])


async def test_before_an_unknown_event_raises_reference_not_found(store: ActivityStore) -> None:
    await add(store)
    missing = uuid.uuid4()

    with pytest.raises(ReferenceNotFoundError, match=str(missing)):
        await store.recent(query=RecentQuery(before=missing))


async def test_a_naive_timestamp_is_taken_as_utc(store: ActivityStore) -> None:
    event = await add(store, timestamp=datetime(2024, 6, 1, 8, 30, 15, 123456))

    stored = await store.get(event_id=event.id)

    assert stored is not None
    assert stored.timestamp == datetime(2024, 6, 1, 8, 30, 15, 123456, tzinfo=UTC)
    assert stored.timestamp.utcoffset() == timedelta(0)
    assert stored == event


async def test_a_timestamp_with_an_offset_is_converted_to_utc(store: ActivityStore) -> None:
    event = ActivityCreate.model_validate(
        {"event_type": "tool_call", "timestamp": "2024-06-01T10:30:00+02:00"}
    )
    created, _ = await store.create(event=event)
    west = await add(
        store, timestamp=datetime(2024, 6, 1, 3, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))
    )

    stored = await store.get(event_id=created.id)
    stored_west = await store.get(event_id=west.id)

    assert stored is not None
    assert stored_west is not None
    assert (stored.timestamp, stored.timestamp.utcoffset()) == (
        datetime(2024, 6, 1, 8, 30, tzinfo=UTC),
        timedelta(0),
    )
    assert stored_west.timestamp == datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    assert stored_west.timestamp.utcoffset() == timedelta(0)
    # Ordering uses the instant, not the local clock reading: 10:30+02:00 is 08:30Z, before 08:30:01Z.
    later = await add(store, timestamp=datetime(2024, 6, 1, 8, 30, 1, tzinfo=UTC))
    assert ids(await store.recent(query=RecentQuery()))[0] == later.id


def nearest_rank(values: list[float], percent: int) -> float:
    """The smallest value with at least `percent`% of the values at or below it (nearest-rank method)."""
    ordered = sorted(values)
    rank = math.ceil(Fraction(percent, 100) * len(ordered))
    return ordered[max(rank, 1) - 1]


async def test_stats_count_errors_and_nearest_rank_percentiles_per_tool(store: ActivityStore) -> None:
    rng = random.Random(42)
    alpha = [round(rng.uniform(1, 500), 3) for _ in range(37)]
    beta = [float(v) for v in rng.sample(range(1, 1000), 20)]
    creates = []
    for i, duration in enumerate(alpha):
        status = EventStatus.ERROR if i % 5 == 0 else EventStatus.SUCCESS
        creates.append(
            ActivityCreate(event_type="tool_call", tool_name="alpha", duration_ms=duration, status=status)
        )
    creates += [ActivityCreate(event_type="tool_call", tool_name="alpha")]  # no duration: counted, not ranked
    creates += [ActivityCreate(event_type="tool_call", tool_name="beta", duration_ms=d) for d in beta]
    creates += [ActivityCreate(event_type="tool_call", tool_name="gamma", status="error") for _ in range(3)]
    creates += [ActivityCreate(event_type="api_request", duration_ms=d) for d in (10, 20)]
    await store.apply_batch(creates=creates, updates=[])

    stats = await store.stats()

    alpha_errors = sum(1 for i in range(37) if i % 5 == 0)
    assert stats == [
        ToolStats(
            tool_name="alpha",
            count=38,
            errors=alpha_errors,
            error_rate=round(alpha_errors / 38, 4),
            p50_duration_ms=nearest_rank(alpha, 50),
            p95_duration_ms=nearest_rank(alpha, 95),
        ),
        ToolStats(
            tool_name="beta",
            count=20,
            errors=0,
            error_rate=0.0,
            p50_duration_ms=nearest_rank(beta, 50),
            p95_duration_ms=nearest_rank(beta, 95),
        ),
        ToolStats(
            tool_name="gamma", count=3, errors=3, error_rate=1.0, p50_duration_ms=None, p95_duration_ms=None
        ),
        ToolStats(tool_name=None, count=2, errors=0, error_rate=0.0, p50_duration_ms=10, p95_duration_ms=20),
    ]
    # Independent of the helper: the 10th and 19th of beta's 20 sorted values.
    assert (stats[1].p50_duration_ms, stats[1].p95_duration_ms) == (sorted(beta)[9], sorted(beta)[18])


async def test_stats_since_counts_only_events_from_then_on(store: ActivityStore) -> None:
    for minutes, duration in ((0, 100.0), (10, 1.0), (20, 2.0), (30, 3.0)):
        await add(store, tool_name="t", timestamp=T0 + timedelta(minutes=minutes), duration_ms=duration)

    [stats] = await store.stats(since=T0 + timedelta(minutes=10))

    assert (stats.count, stats.p50_duration_ms, stats.p95_duration_ms) == (3, 2.0, 3.0)
    assert await store.stats(since=T0 + timedelta(hours=1)) == []
    assert (await store.stats())[0].count == 4


async def test_stats_of_an_empty_store_is_empty(store: ActivityStore) -> None:
    assert await store.stats() == []


async def test_changes_since_folds_several_changes_of_one_event_into_its_latest(store: ActivityStore) -> None:
    event = await add(store, data={"a": 1})
    cursor = await store.last_change()
    await store.update(event_id=event.id, changes=ActivityUpdate(data={"b": 2}))
    final = await store.update(event_id=event.id, changes=ActivityUpdate(status=EventStatus.SUCCESS))

    changes = await store.changes_since(cursor=cursor, limit=100)

    assert [(c.seq, c.type, c.event) for c in changes] == [(cursor + 2, ChangeType.COMPLETED, final)]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (EventStatus.ERROR, ChangeType.FAILED),
        (EventStatus.PENDING, ChangeType.UPDATED),
    ],
)
async def test_changes_since_types_a_changed_event_by_its_status(
    store: ActivityStore, status: EventStatus, expected: ChangeType
) -> None:
    event = await add(store)
    cursor = await store.last_change()
    await store.update(event_id=event.id, changes=ActivityUpdate(status=status, duration_ms=1))

    [change] = await store.changes_since(cursor=cursor, limit=100)

    assert (change.type, change.event.id) == (expected, event.id)


async def test_changes_since_reports_events_created_after_the_cursor_as_logged(store: ActivityStore) -> None:
    await add(store)
    cursor = await store.last_change()
    fresh = await add(store)
    completed = await add(store)
    final = await store.update(event_id=completed.id, changes=ActivityUpdate(status=EventStatus.SUCCESS))

    changes = await store.changes_since(cursor=cursor, limit=100)

    assert [(c.seq, c.type, c.event) for c in changes] == [
        (cursor + 1, ChangeType.LOGGED, fresh),
        (cursor + 3, ChangeType.LOGGED, final),
    ]


async def test_changes_since_reports_a_deletion_by_id_only(store: ActivityStore) -> None:
    kept = await add(store)
    doomed = await add(store, tool_name="doomed", data={"secret": "x"})
    cursor = await store.last_change()
    await store.update(event_id=doomed.id, changes=ActivityUpdate(status=EventStatus.ERROR))
    await store.delete(event_id=doomed.id)
    updated_kept = await store.update(event_id=kept.id, changes=ActivityUpdate(data={"k": 1}))

    changes = await store.changes_since(cursor=cursor, limit=100)

    assert [(c.seq, c.type, c.event) for c in changes] == [
        (cursor + 2, ChangeType.DELETED, DeletedEvent(id=doomed.id)),
        (cursor + 3, ChangeType.UPDATED, updated_kept),
    ]
    assert isinstance(changes[0].event, DeletedEvent)


async def test_changes_since_pages_with_limit_in_change_order(store: ActivityStore) -> None:
    events = [await add(store) for _ in range(12)]
    for event in events[::3]:
        await store.update(event_id=event.id, changes=ActivityUpdate(status=EventStatus.SUCCESS))
    for event in events[1::4]:
        await store.delete(event_id=event.id)
    everything = await store.changes_since(cursor=0, limit=1000)
    last = await store.last_change()

    seen = []
    cursor = 0
    while True:
        page = await store.changes_since(cursor=cursor, limit=4)
        assert len(page) <= 4
        if not page:
            break
        seen.extend(page)
        cursor = page[-1].seq
        assert len(seen) <= len(everything), "paging does not end"

    # Without `origin`, a change's type is relative to the page's own cursor, so pages are compared
    # with the single read by number and state only (typing across pages is tested below).
    assert [(c.seq, c.event) for c in seen] == [(c.seq, c.event) for c in everything]
    assert [c.seq for c in seen] == sorted({c.seq for c in seen})
    assert seen[-1].seq == last
    assert len(seen) == 12  # one change per event: the latest state or the deletion
    assert await store.changes_since(cursor=last, limit=10) == []


async def test_changes_since_types_pages_against_the_origin_cursor(store: ActivityStore) -> None:
    origin = await store.last_change()
    early = await add(store)
    for _ in range(5):
        await add(store)
    finished = await store.update(event_id=early.id, changes=ActivityUpdate(status=EventStatus.SUCCESS))
    first_page = await store.changes_since(cursor=origin, limit=3, origin=origin)

    later_pages = await store.changes_since(cursor=first_page[-1].seq, limit=100, origin=origin)
    without_origin = await store.changes_since(cursor=first_page[-1].seq, limit=100)

    # The event was created after the client's cursor, so it is new to the client on every page.
    assert (later_pages[-1].type, later_pages[-1].event) == (ChangeType.LOGGED, finished)
    assert without_origin[-1].type == ChangeType.COMPLETED


async def test_recent_page_is_recent_with_the_cursor_of_the_same_moment(store: ActivityStore) -> None:
    events = [await add(store, tool_name=f"t{i % 2}") for i in range(5)]

    page = await store.recent_page(query=RecentQuery(limit=3, tool_name="t0"))

    assert page.events == await store.recent(query=RecentQuery(limit=3, tool_name="t0"))
    assert ids(page.events) == [events[4].id, events[2].id, events[0].id]
    assert page.cursor == await store.last_change()


async def test_an_empty_recent_page_still_has_its_cursor(store: ActivityStore) -> None:
    await add(store, tool_name="a")

    page = await store.recent_page(query=RecentQuery(tool_name="nothing"))

    assert page.events == []
    assert page.cursor == await store.last_change() > 0


async def test_changes_after_a_pages_cursor_are_exactly_those_it_does_not_show(store: ActivityStore) -> None:
    # Pages read while events are being written: each page and the changes after its cursor must
    # together hold every event once, whenever the page was read between two commits.
    written: list[uuid.UUID] = []
    pages = []

    async def write() -> None:
        for i in range(40):
            written.append((await add(store, tool_name=f"w{i}")).id)

    async def read() -> None:
        while len(written) < 40:
            pages.append(await store.recent_page(query=RecentQuery(limit=500)))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(write)
        tasks.start_soon(read)

    assert len(pages) > 1
    for page in pages:
        shown = set(ids(page.events))
        later = await store.changes_since(cursor=page.cursor, limit=1000)
        created_later = {change.event.id for change in later if change.type == ChangeType.LOGGED}
        assert not shown & created_later, "an event on the page is replayed as new"
        assert shown | created_later == set(written), "an event is neither on the page nor replayed"
