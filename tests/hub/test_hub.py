"""The hub in-process on the memory bus: ordered fan-out, filters, bounded queues, bad bus messages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
import pytest

from activity_feed.errors import InvalidCursorError
from activity_feed.hub import ChangeFilter, Hub, Notice, Subscription, decode_cursor, encode_cursor
from activity_feed.hub.backends import MemoryBackend
from activity_feed.schemas import ActivityPublic, Change, ChangeType, DeletedEvent, EventStatus, EventType

WAIT_SECONDS = 5.0


@pytest.fixture
async def backend() -> MemoryBackend:
    return MemoryBackend()


@pytest.fixture
async def hub(backend: MemoryBackend) -> AsyncIterator[Hub]:
    running = Hub(backend)
    await running.start()
    yield running
    await running.stop()


def make_event(
    *,
    event_type: EventType = EventType.TOOL_CALL,
    status: EventStatus = EventStatus.PENDING,
    tool_name: str | None = "search",
    session_id: str | None = None,
) -> ActivityPublic:
    return ActivityPublic(
        id=uuid.uuid4(),
        timestamp=datetime.now(UTC),
        tool_name=tool_name,
        user_source="tests",
        event_type=event_type,
        status=status,
        data={"k": "v"},
        duration_ms=None,
        error_message=None,
        correlation_id=None,
        session_id=session_id,
    )


def make_changes(count: int, *, first_seq: int = 1) -> list[Change]:
    return [Change(seq=first_seq + i, type=ChangeType.LOGGED, event=make_event()) for i in range(count)]


async def take(subscription: Subscription, count: int) -> list[Notice]:
    """The next `count` notices of `subscription`, failing if they do not all arrive in time."""
    async with asyncio.timeout(WAIT_SECONDS):
        return [await subscription.queue.get() for _ in range(count)]


def notice_for(event: ActivityPublic | DeletedEvent, *, seq: int = 1) -> Notice:
    return Notice.from_change(Change(seq=seq, type=ChangeType.UPDATED, event=event))


async def test_published_changes_reach_every_subscriber_in_order(hub: Hub) -> None:
    changes = make_changes(20)
    async with (
        hub.subscribe(ChangeFilter(), queue_size=100) as first,
        hub.subscribe(ChangeFilter(), queue_size=100) as second,
    ):
        assert hub.subscriber_count == 2
        hub.publish(changes)
        for subscription in (first, second):
            notices = await take(subscription, len(changes))
            assert [n.seq for n in notices] == [c.seq for c in changes]
            assert [n.event["id"] for n in notices] == [str(c.event.id) for c in changes]
    assert hub.subscriber_count == 0


async def test_notice_text_is_the_stream_message(hub: Hub) -> None:
    change = Change(seq=7, type=ChangeType.COMPLETED, event=make_event(status=EventStatus.SUCCESS))
    async with hub.subscribe(ChangeFilter(), queue_size=10) as subscription:
        hub.publish([change])
        (notice,) = await take(subscription, 1)
    message = orjson.loads(notice.text)
    assert set(message) == {"type", "event", "cursor"}
    assert message["type"] == "tool_completed"
    assert message["event"]["id"] == str(change.event.id)
    assert message["event"]["status"] == "success"
    assert decode_cursor(message["cursor"]) == 7


@pytest.mark.parametrize(
    ("change_filter", "passes"),
    [
        (ChangeFilter(), True),
        (ChangeFilter(event_type="tool_call"), True),
        (ChangeFilter(event_type="api_request"), False),
        (ChangeFilter(status="pending"), True),
        (ChangeFilter(status="error"), False),
        (ChangeFilter(tool_name="search"), True),
        (ChangeFilter(tool_name="other"), False),
        (ChangeFilter(event_type="tool_call", status="pending", tool_name="search"), True),
        (ChangeFilter(event_type="tool_call", status="pending", tool_name="other"), False),
    ],
)
def test_filter_matches_the_event_state(change_filter: ChangeFilter, passes: bool) -> None:
    assert change_filter.matches(notice_for(make_event())) is passes


@pytest.mark.parametrize(
    ("change_filter", "session_id", "passes"),
    [
        (ChangeFilter(session_id="s1"), "s1", True),
        (ChangeFilter(session_id="s1"), "s2", False),
        (ChangeFilter(session_id="s1"), None, False),
        (ChangeFilter(session_id="s1", tool_name="search"), "s1", True),
        (ChangeFilter(session_id="s1", tool_name="other"), "s1", False),
    ],
)
def test_filter_matches_the_session(
    change_filter: ChangeFilter, session_id: str | None, passes: bool
) -> None:
    event = make_event(session_id=session_id)
    change = Change(seq=1, type=ChangeType.LOGGED, event=event)

    assert change_filter.matches(notice_for(event)) is passes
    assert change_filter.matches_change(change) is passes


def test_session_filter_on_a_notice_without_the_field() -> None:
    # What an instance that predates sessions publishes on a shared bus.
    text = '{"type": "activity_logged", "event": {"id": "x", "tool_name": null}, "cursor": "5"}'
    notice = Notice.from_payload(text.encode())

    assert ChangeFilter(session_id="s1").matches(notice) is False
    assert ChangeFilter(tool_name=None).matches(notice) is True


def test_filter_never_hides_a_replayed_deletion() -> None:
    deletion = Notice.from_change(Change(seq=3, type=ChangeType.DELETED, event=DeletedEvent(id=uuid.uuid4())))
    assert set(deletion.event) == {"id"}
    strict = ChangeFilter(event_type="api_request", status="error", tool_name="nothing")
    assert strict.matches(deletion)


async def test_subscriber_only_receives_matching_changes(hub: Hub) -> None:
    wanted = Change(seq=2, type=ChangeType.LOGGED, event=make_event(event_type=EventType.API_REQUEST))
    others = [
        Change(seq=1, type=ChangeType.LOGGED, event=make_event()),
        Change(seq=3, type=ChangeType.LOGGED, event=make_event(status=EventStatus.ERROR)),
    ]
    last = Change(seq=4, type=ChangeType.LOGGED, event=make_event(event_type=EventType.API_REQUEST))
    async with hub.subscribe(ChangeFilter(event_type="api_request"), queue_size=10) as subscription:
        hub.publish([others[0], wanted, others[1], last])
        notices = await take(subscription, 2)
        assert [n.seq for n in notices] == [2, 4]
        assert subscription.queue.empty()


async def test_full_live_subscriber_is_dropped_while_others_keep_receiving(hub: Hub) -> None:
    changes = make_changes(10)
    async with (
        hub.subscribe(ChangeFilter(), queue_size=3) as slow,
        hub.subscribe(ChangeFilter(), queue_size=100) as healthy,
    ):
        slow.catching_up = False
        healthy.catching_up = False
        hub.publish(changes[:5])
        assert [n.seq for n in await take(healthy, 5)] == [1, 2, 3, 4, 5]
        assert slow.too_slow.is_set()
        assert not slow.lost
        assert hub.subscriber_count == 1
        # Once dropped, the slow subscriber is fed nothing more; the healthy one gets everything.
        hub.publish(changes[5:])
        assert [n.seq for n in await take(healthy, 5)] == [6, 7, 8, 9, 10]
        assert [n.seq for n in await take(slow, slow.queue.qsize())] == [1, 2, 3]


async def test_full_subscriber_catching_up_is_only_marked_lost(hub: Hub) -> None:
    async with (
        hub.subscribe(ChangeFilter(), queue_size=2) as catching_up,
        hub.subscribe(ChangeFilter(), queue_size=100) as witness,
    ):
        assert catching_up.catching_up
        hub.publish(make_changes(5))
        await take(witness, 5)
        assert catching_up.lost
        assert not catching_up.too_slow.is_set()
        assert hub.subscriber_count == 2
        catching_up.restart_catch_up()
        assert not catching_up.lost
        assert catching_up.queue.empty()
        hub.publish(make_changes(1, first_seq=6))
        assert [n.seq for n in await take(catching_up, 1)] == [6]


@pytest.mark.parametrize("seq", [0, 1, 42, 2**53, 2**63 - 1])
def test_cursor_round_trips(seq: int) -> None:
    cursor = encode_cursor(seq)
    assert isinstance(cursor, str)
    assert decode_cursor(cursor) == seq


@pytest.mark.parametrize("garbage", ["", "abc", "-1", "1.5", " 1", "1e3", "\u0661\u0662", "9" * 20, "0x10"])
def test_garbage_cursor_is_rejected(garbage: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(garbage)


def test_a_notice_from_a_change_says_what_the_rest_api_says() -> None:
    event = make_event(status=EventStatus.ERROR)
    notice = notice_for(event, seq=12)

    message = orjson.loads(notice.text)
    assert message == {
        "type": "activity_updated",
        "event": orjson.loads(event.model_dump_json()),
        "cursor": encode_cursor(12),
    }
    assert message["event"]["timestamp"].endswith("Z")
    assert notice.event == message["event"]
    assert (notice.seq, notice.type) == (12, "activity_updated")


def test_a_notice_needs_its_text_or_its_change() -> None:
    with pytest.raises(ValueError, match="text or its change"):
        Notice(seq=1, type="activity_logged")
