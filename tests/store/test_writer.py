"""The group-commit writer, seen through `ActivityStore`: idempotent creates, batches, PATCH, delete, and
change numbers that commit in order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection

from activity_feed.errors import StoreUnavailableError
from activity_feed.schemas import (
    ActivityCreate,
    ActivityUpdate,
    ActivityUpdateItem,
    BatchResult,
    Change,
    ChangeType,
    DeletedEvent,
    EventStatus,
    EventType,
)
from activity_feed.store import ActivityStore
from activity_feed.store.engine import create_reader_engine
from activity_feed.store.migrate import upgrade
from activity_feed.store.reads import RecentQuery
from activity_feed.store.runner import AsyncTransactionRunner, TransactionRunner
from activity_feed.store.transaction import WriteRequest
from activity_feed.store.writer import GroupCommitWriter

WAIT_SECONDS = 20
T = TypeVar("T")


@dataclass
class Recorder:
    """A started store and every change it published after commit, in the order it published them."""

    store: ActivityStore
    changes: list[Change] = field(default_factory=list)

    @property
    def seqs(self) -> list[int]:
        return [change.seq for change in self.changes]


@pytest.fixture
async def recorder(database_url: str) -> AsyncIterator[Recorder]:
    changes: list[Change] = []
    activity_store = ActivityStore(database_url, on_commit=changes.extend)
    await activity_store.start()
    yield Recorder(activity_store, changes)
    await activity_store.close()


def make(**fields: Any) -> ActivityCreate:
    fields.setdefault("event_type", EventType.TOOL_CALL)
    return ActivityCreate(**fields)


async def test_create_returns_a_new_event_with_defaults(recorder: Recorder) -> None:
    before = datetime.now(UTC)
    event, created = await recorder.store.create(event=make(tool_name="search"))
    assert created is True
    assert event.id.version == 7
    assert event.tool_name == "search"
    assert event.status == EventStatus.PENDING
    assert event.data == {}
    assert event.timestamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= event.timestamp <= datetime.now(UTC) + timedelta(seconds=1)
    assert await recorder.store.get(event_id=event.id) == event
    assert [(c.seq, c.type, c.event) for c in recorder.changes] == [(1, ChangeType.LOGGED, event)]


async def test_create_with_an_existing_id_returns_the_stored_event_unchanged(recorder: Recorder) -> None:
    event_id = uuid.uuid4()
    first, created = await recorder.store.create(event=make(id=event_id, tool_name="a", data={"n": 1}))
    assert created is True

    again, created_again = await recorder.store.create(
        event=make(id=event_id, tool_name="b", status=EventStatus.ERROR, data={"n": 2})
    )

    assert created_again is False
    assert again == first
    assert await recorder.store.get(event_id=event_id) == first
    assert recorder.seqs == [1]
    assert await recorder.store.last_change() == 1


async def test_batch_counts_created_existing_updated_and_missing(recorder: Recorder) -> None:
    old, _ = await recorder.store.create(event=make(tool_name="old"))
    new_id = uuid.uuid4()

    result = await recorder.store.apply_batch(
        creates=[make(id=new_id), make(), make(id=old.id, tool_name="ignored")],
        updates=[
            ActivityUpdateItem(id=old.id, status=EventStatus.SUCCESS),
            ActivityUpdateItem(id=uuid.uuid4(), status=EventStatus.ERROR),
        ],
    )

    assert result == BatchResult(created=2, existing=1, updated=1, missing=1)
    stored_old = await recorder.store.get(event_id=old.id)
    assert stored_old is not None
    assert stored_old.tool_name == "old"
    assert stored_old.status == EventStatus.SUCCESS
    assert await recorder.store.get(event_id=new_id) is not None


async def test_a_large_batch_finds_stored_ids_wherever_they_fall_in_it(recorder: Recorder) -> None:
    # On SQLite the ids are looked up in one statement padded to a power of two with the last id: stored
    # ones at both ends and in the middle (the last one is also the padding), and one named twice.
    ids = [uuid.uuid4() for _ in range(1000)]
    stored_at = (0, 499, 500, 999)
    await recorder.store.apply_batch(
        creates=[make(id=ids[i], tool_name=f"stored-{i}") for i in stored_at], updates=[]
    )

    result = await recorder.store.apply_batch(
        creates=[make(id=event_id, tool_name="replayed") for event_id in ids] + [make(id=ids[499])],
        updates=[],
    )

    assert result == BatchResult(created=996, existing=5)
    for i in stored_at:
        stored = await recorder.store.get(event_id=ids[i])
        assert stored is not None
        assert stored.tool_name == f"stored-{i}"
    created = await recorder.store.get(event_id=ids[1])
    assert created is not None
    assert created.tool_name == "replayed"


async def test_a_replayed_id_at_the_end_of_a_large_batch_leaves_no_half_inserted_rows(
    recorder: Recorder,
) -> None:
    # On SQLite a batch goes in as new events first, several statements for 1,000 of them: the stored id
    # in the last one is found after the earlier ones went in, and those must not stay in twice.
    ids = [uuid.uuid4() for _ in range(1000)]
    await recorder.store.apply_batch(creates=[make(id=ids[-1], tool_name="stored")], updates=[])

    result = await recorder.store.apply_batch(
        creates=[make(id=event_id, tool_name="batch") for event_id in ids], updates=[]
    )

    assert result == BatchResult(created=999, existing=1)
    assert recorder.seqs == list(range(1, 1001))
    assert await recorder.store.last_change() == 1000
    stored = await recorder.store.get(event_id=ids[-1])
    assert stored is not None
    assert stored.tool_name == "stored"
    every_event = await recorder.store.recent(query=RecentQuery(limit=2000))
    assert sorted(str(event.id) for event in every_event) == sorted(str(event_id) for event_id in ids)


async def test_each_created_event_is_published_as_it_was_stored(recorder: Recorder) -> None:
    # The writer makes a created event's public form only when it is first asked for.
    creates = [make(id=uuid.uuid4(), tool_name=f"tool-{i}", data={"i": i}) for i in range(100)]
    creates.append(make(tool_name="no id, no timestamp", status=EventStatus.SUCCESS, duration_ms=3.5))

    result = await recorder.store.apply_batch(creates=creates, updates=[])

    assert result == BatchResult(created=101)
    assert recorder.seqs == list(range(1, 102))
    for change, sent in zip(recorder.changes, creates, strict=True):
        assert change.type == ChangeType.LOGGED
        assert change.event is change.event
        assert change.event == await recorder.store.get(event_id=change.event.id)
        assert change.event.tool_name == sent.tool_name
        assert sent.id is None or change.event.id == sent.id


async def test_batch_applies_creates_before_updates(recorder: Recorder) -> None:
    event_id = uuid.uuid4()

    result = await recorder.store.apply_batch(
        creates=[make(id=event_id, data={"a": 1})],
        updates=[ActivityUpdateItem(id=event_id, status=EventStatus.SUCCESS, data={"b": 2}, duration_ms=5)],
    )

    assert result == BatchResult(created=1, updated=1)
    stored = await recorder.store.get(event_id=event_id)
    assert stored is not None
    assert (stored.status, stored.data, stored.duration_ms) == (EventStatus.SUCCESS, {"a": 1, "b": 2}, 5)
    assert [c.type for c in recorder.changes] == [ChangeType.LOGGED, ChangeType.COMPLETED]
    assert recorder.seqs == [1, 2]


async def test_batch_with_a_duplicate_id_creates_the_first_and_counts_the_second_as_existing(
    recorder: Recorder,
) -> None:
    event_id = uuid.uuid4()

    result = await recorder.store.apply_batch(
        creates=[make(id=event_id, tool_name="first"), make(id=event_id, tool_name="second")], updates=[]
    )

    assert result == BatchResult(created=1, existing=1)
    stored = await recorder.store.get(event_id=event_id)
    assert stored is not None
    assert stored.tool_name == "first"
    assert recorder.seqs == [1]


async def test_batch_with_two_updates_of_one_event_applies_both_in_order(recorder: Recorder) -> None:
    event, _ = await recorder.store.create(event=make(data={"a": 1}))

    result = await recorder.store.apply_batch(
        creates=[],
        updates=[
            ActivityUpdateItem(id=event.id, data={"b": 2}),
            ActivityUpdateItem(id=event.id, status=EventStatus.ERROR, data={"a": 3}),
        ],
    )

    assert result == BatchResult(updated=2)
    stored = await recorder.store.get(event_id=event.id)
    assert stored is not None
    assert (stored.status, stored.data) == (EventStatus.ERROR, {"a": 3, "b": 2})
    assert recorder.seqs == [1, 2, 3]
    assert await recorder.store.last_change() == 3


async def test_update_merges_data_key_by_key_and_keeps_other_fields(recorder: Recorder) -> None:
    event, _ = await recorder.store.create(
        event=make(tool_name="t", user_source="u", data={"a": 1, "b": {"x": 1}}, correlation_id="c")
    )

    updated = await recorder.store.update(
        event_id=event.id, changes=ActivityUpdate(data={"b": 2, "c": [3]}, error_message="boom")
    )

    assert updated is not None
    assert updated.data == {"a": 1, "b": 2, "c": [3]}
    assert updated.error_message == "boom"
    assert updated.model_dump(exclude={"data", "error_message"}) == event.model_dump(
        exclude={"data", "error_message"}
    )
    assert await recorder.store.get(event_id=event.id) == updated


@pytest.mark.parametrize(
    ("status", "expected"),
    [(EventStatus.SUCCESS, ChangeType.COMPLETED), (EventStatus.ERROR, ChangeType.FAILED)],
)
async def test_update_of_status_publishes_its_change_type(
    recorder: Recorder, status: EventStatus, expected: ChangeType
) -> None:
    event, _ = await recorder.store.create(event=make())

    updated = await recorder.store.update(
        event_id=event.id, changes=ActivityUpdate(status=status, duration_ms=12.5)
    )

    assert updated is not None
    assert (updated.status, updated.duration_ms) == (status, 12.5)
    assert [(c.seq, c.type, c.event) for c in recorder.changes[1:]] == [(2, expected, updated)]


@pytest.mark.parametrize(
    "changes",
    [
        ActivityUpdate(data={"k": "v"}),
        ActivityUpdate(duration_ms=3),
        ActivityUpdate(error_message="late"),
        ActivityUpdate(status=EventStatus.PENDING, duration_ms=4),
    ],
    ids=["data", "duration", "error_message", "back_to_pending"],
)
async def test_update_without_a_new_final_status_publishes_activity_updated(
    recorder: Recorder, changes: ActivityUpdate
) -> None:
    event, _ = await recorder.store.create(event=make(status=EventStatus.SUCCESS))

    updated = await recorder.store.update(event_id=event.id, changes=changes)

    assert updated is not None
    assert [(c.seq, c.type, c.event) for c in recorder.changes[1:]] == [(2, ChangeType.UPDATED, updated)]


@pytest.mark.parametrize(
    "changes",
    [
        ActivityUpdate(),
        ActivityUpdate(data={}),
        ActivityUpdate(status=EventStatus.PENDING, data={"a": 1}),
        ActivityUpdate(duration_ms=7, error_message="e"),
    ],
    ids=["empty", "empty_data", "same_status_and_data", "same_duration_and_error"],
)
async def test_update_that_changes_nothing_publishes_nothing(
    recorder: Recorder, changes: ActivityUpdate
) -> None:
    event, _ = await recorder.store.create(event=make(data={"a": 1}, duration_ms=7, error_message="e"))

    updated = await recorder.store.update(event_id=event.id, changes=changes)

    assert updated == event
    assert recorder.seqs == [1]
    assert await recorder.store.last_change() == 1
    assert await recorder.store.changes_since(cursor=1, limit=10) == []


async def test_update_of_an_unknown_id_returns_none(recorder: Recorder) -> None:
    assert await recorder.store.update(event_id=uuid.uuid4(), changes=ActivityUpdate(data={"a": 1})) is None
    assert recorder.changes == []


async def test_delete_removes_the_event_and_leaves_a_tombstone(recorder: Recorder) -> None:
    event, _ = await recorder.store.create(event=make(tool_name="gone"))

    assert await recorder.store.delete(event_id=event.id) is True

    assert await recorder.store.get(event_id=event.id) is None
    assert [(c.seq, c.type, c.event.id) for c in recorder.changes] == [
        (1, ChangeType.LOGGED, event.id),
        (2, ChangeType.DELETED, event.id),
    ]
    replay = await recorder.store.changes_since(cursor=1, limit=10)
    assert [(c.seq, c.type, c.event) for c in replay] == [(2, ChangeType.DELETED, DeletedEvent(id=event.id))]


async def test_delete_of_an_unknown_or_deleted_id_returns_false(recorder: Recorder) -> None:
    event, _ = await recorder.store.create(event=make())
    assert await recorder.store.delete(event_id=event.id) is True

    assert await recorder.store.delete(event_id=event.id) is False
    assert await recorder.store.delete(event_id=uuid.uuid4()) is False
    assert recorder.seqs == [1, 2]


async def test_a_deleted_id_can_be_created_again(recorder: Recorder) -> None:
    event, _ = await recorder.store.create(event=make(tool_name="first"))
    await recorder.store.delete(event_id=event.id)

    again, created = await recorder.store.create(event=make(id=event.id, tool_name="second"))

    assert created is True
    assert again.tool_name == "second"
    assert await recorder.store.get(event_id=event.id) == again


async def test_change_numbers_are_contiguous_in_commit_order_across_concurrent_creates(
    recorder: Recorder,
) -> None:
    events = [make(id=uuid.uuid4(), data={"i": i}) for i in range(200)]

    results = await asyncio.wait_for(
        asyncio.gather(*(recorder.store.create(event=e) for e in events)), WAIT_SECONDS
    )

    assert all(created for _, created in results)
    assert recorder.seqs == list(range(1, 201))
    assert sorted(c.event.id for c in recorder.changes) == sorted(e.id for e in events if e.id)
    assert all(c.type == ChangeType.LOGGED for c in recorder.changes)
    assert await recorder.store.last_change() == 200


async def test_change_numbers_stay_contiguous_across_concurrent_mixed_writes(recorder: Recorder) -> None:
    created = [e for e, _ in [await recorder.store.create(event=make()) for _ in range(50)]]
    writes = [recorder.store.update(event_id=e.id, changes=ActivityUpdate(data={"x": 1})) for e in created]
    writes += [recorder.store.create(event=make()) for _ in range(50)]
    writes += [recorder.store.delete(event_id=e.id) for e in created[:10]]

    await asyncio.wait_for(asyncio.gather(*writes), WAIT_SECONDS)

    assert recorder.seqs == list(range(1, 161))
    assert await recorder.store.last_change() == 160
    replay = await recorder.store.changes_since(cursor=0, limit=1000)
    assert [c.seq for c in replay] == sorted(c.seq for c in replay)
    assert len({c.event.id for c in replay}) == len(replay) == 100


async def test_one_bad_request_in_a_group_does_not_fail_the_others(recorder: Recorder) -> None:
    # Built without validation so that it reaches the database: its data cannot be stored as JSON.
    bad = ActivityCreate.model_construct(event_type=EventType.TOOL_CALL, data={"x": object()})
    good = [make(id=uuid.uuid4()) for _ in range(10)]
    submits = [recorder.store.create(event=e) for e in good[:5]]
    submits.append(recorder.store.create(event=bad))
    submits += [recorder.store.create(event=e) for e in good[5:]]

    results = await asyncio.wait_for(asyncio.gather(*submits, return_exceptions=True), WAIT_SECONDS)

    # Encoding fails: in SQLAlchemy's bind processing (PostgreSQL), or before the driver sees the row
    # (SQLite's insert, which encodes its rows itself).
    assert isinstance(results[5], sa.exc.StatementError | TypeError)
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 5)
    for event in good:
        assert event.id is not None
        assert await recorder.store.get(event_id=event.id) is not None
    assert recorder.seqs == list(range(1, 11))
    assert await recorder.store.last_change() == 10
    # The writer goes on working after the failure.
    _, created = await recorder.store.create(event=make())
    assert created is True
    assert recorder.seqs[-1] == 11


async def test_close_commits_every_queued_write_and_later_writes_fail_cleanly(database_url: str) -> None:
    changes: list[Change] = []
    store = ActivityStore(database_url, on_commit=changes.extend)
    await store.start()
    events = [make(id=uuid.uuid4()) for _ in range(300)]
    writes = [asyncio.create_task(store.create(event=event)) for event in events]
    await asyncio.sleep(0)  # every write is queued; few, if any, are committed yet

    await asyncio.wait_for(store.close(), WAIT_SECONDS)

    assert all(task.done() and task.result()[1] for task in writes)
    assert len(changes) == 300
    with pytest.raises(StoreUnavailableError):
        await asyncio.wait_for(store.create(event=make()), WAIT_SECONDS)
    reopened = ActivityStore(database_url)
    await reopened.start()
    try:
        for event in events:
            assert event.id is not None
            assert await reopened.get(event_id=event.id) is not None
    finally:
        await reopened.close()


class StartSignallingRunner:
    """The real runner, telling when a transaction starts."""

    def __init__(self, runner: TransactionRunner) -> None:
        self.runner = runner
        self.started = asyncio.Event()

    async def __call__(self, work: Callable[[Connection], T], *, items: int) -> T:
        self.started.set()
        return await self.runner(work, items=items)

    async def close(self) -> None:
        await self.runner.close()


async def test_a_write_no_transaction_takes_in_time_fails_and_is_never_written(postgres_url: str) -> None:
    # PostgreSQL only: there the writer gives up on a request left waiting behind a transaction that
    # does not finish (SQLite's own busy timeout bounds its transactions instead).
    reader = create_reader_engine(postgres_url, timeout=WAIT_SECONDS)
    await upgrade(reader)
    runner = StartSignallingRunner(AsyncTransactionRunner(reader))
    writer = GroupCommitWriter(runner, queue_timeout=0.3)
    writer.start()
    held, waiting = make(tool_name="held"), make(tool_name="withdrawn")
    try:
        async with reader.connect() as blocker:
            # Another session holds the change counter, so the first transaction waits for it.
            await blocker.execute(sa.text("BEGIN"))
            await blocker.execute(sa.text("SELECT value FROM activity_change_counter FOR UPDATE"))
            first = asyncio.create_task(writer.submit(WriteRequest(creates=[held])))
            # The writer's transaction has taken it, and waits for the counter.
            await asyncio.wait_for(runner.started.wait(), WAIT_SECONDS)
            with pytest.raises(StoreUnavailableError, match=r"no write committed within 0\.3 s"):
                await asyncio.wait_for(writer.submit(WriteRequest(creates=[waiting])), WAIT_SECONDS)
            assert not first.done()  # the 503 came while the transaction ahead still waited
            await blocker.execute(sa.text("ROLLBACK"))
        outcome = await asyncio.wait_for(first, WAIT_SECONDS)
        assert [created.event.tool_name for created in outcome.created] == ["held"]
        async with reader.connect() as conn:
            names = (await conn.execute(sa.text("SELECT tool_name FROM activity_events"))).scalars().all()
        assert names == ["held"]
    finally:
        await writer.close()
        await reader.dispose()
