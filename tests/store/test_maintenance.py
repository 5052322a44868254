"""Retention and the pending timeout (store/maintenance.py): what goes, in what order and batches, the
changes they publish and the tombstones they leave, and the replay floor once tombstones are dropped."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from activity_feed.api.feed import maintenance_for
from activity_feed.schemas import (
    ActivityCreate,
    ActivityPublic,
    ActivityUpdate,
    ActivityUpdateItem,
    Change,
    ChangeType,
    DeletedEvent,
    EventStatus,
    EventType,
)
from activity_feed.settings import Settings
from activity_feed.store import ActivityStore, RecentQuery
from activity_feed.store.maintenance import (
    Retention,
    drop_tombstones,
    expire_pending,
    prune,
)
from activity_feed.store.transaction import WriteRequest

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
# A database named in the settings the maintenance reads, never opened (an in-memory one is refused).
UNUSED_DATABASE = "sqlite:///unused.db"


@dataclass
class Recorder:
    """A started store and what it published, one list per committed transaction."""

    store: ActivityStore
    commits: list[Sequence[Change]] = field(default_factory=list)

    @property
    def changes(self) -> list[Change]:
        return [change for commit in self.commits for change in commit]


@pytest.fixture
async def recorder(database_url: str) -> AsyncIterator[Recorder]:
    commits: list[Sequence[Change]] = []
    activity_store = ActivityStore(database_url, on_commit=commits.append)
    await activity_store.start()
    yield Recorder(activity_store, commits)
    await activity_store.close()


async def create_at(store: ActivityStore, *ages: timedelta, **fields: Any) -> list[ActivityPublic]:
    """One event per age, stamped that long before NOW, in the order given."""
    fields.setdefault("event_type", EventType.TOOL_CALL)
    fields.setdefault("status", EventStatus.SUCCESS)
    events = []
    for age in ages:
        event, _ = await store.create(event=ActivityCreate(timestamp=NOW - age, **fields))
        events.append(event)
    return events


async def remaining(store: ActivityStore) -> list[uuid.UUID]:
    """Ids of the events left, oldest first."""
    return [event.id for event in reversed(await store.recent(query=RecentQuery(limit=500)))]


def days(*numbers: float) -> list[timedelta]:
    return [timedelta(days=n) for n in numbers]


# Retention.


async def test_prune_by_age_deletes_only_events_older_than_the_window(recorder: Recorder) -> None:
    store = recorder.store
    old = await create_at(store, *days(40, 31))
    young = await create_at(store, *days(29, 1))

    deleted = await prune(store, retention=Retention(older_than=timedelta(days=30)), now=NOW)

    assert deleted == 2
    assert await remaining(store) == [event.id for event in young]
    assert [(c.type, c.event.id) for c in recorder.changes[-2:]] == [
        (ChangeType.DELETED, event.id) for event in old
    ]


async def test_prune_by_count_keeps_the_last_to_arrive_whatever_their_timestamps(recorder: Recorder) -> None:
    store = recorder.store
    # Arrival order is not timestamp order here: arrival decides, and the first to arrive go first.
    first, second, third = await create_at(store, *days(5, 9, 1))
    fourth, fifth = await create_at(store, *days(7, 2))

    deleted = await prune(store, retention=Retention(keep=2), now=NOW)

    assert deleted == 3
    assert set(await remaining(store)) == {fourth.id, fifth.id}
    assert [c.event.id for c in recorder.changes[-3:]] == [first.id, second.id, third.id]


async def test_events_stamped_in_the_future_never_push_out_the_events_that_arrived_after_them(
    recorder: Recorder,
) -> None:
    store = recorder.store
    # What a database from before ingest refused such timestamps may hold: a client's clock hours
    # ahead, another's in the year 9999, then real events arriving after them.
    await create_at(store, *days(3, 2))
    for stamp in (NOW + timedelta(hours=5), datetime(9999, 12, 31, tzinfo=UTC)):
        await store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL, timestamp=stamp))
    real = await create_at(store, timedelta(hours=2), timedelta(minutes=1), timedelta(0))

    deleted = await prune(store, retention=Retention(keep=3), now=NOW)

    assert deleted == 4
    assert set(await remaining(store)) == {event.id for event in real}
    assert await prune(store, retention=Retention(keep=3), now=NOW) == 0


async def test_prune_by_age_goes_by_timestamp_and_by_count_by_arrival(recorder: Recorder) -> None:
    store = recorder.store
    first = (await create_at(store, *days(1)))[0]
    backfilled = (await create_at(store, *days(40)))[0]  # arrived second, stamped long ago
    last = (await create_at(store, *days(2)))[0]

    deleted = await prune(store, retention=Retention(older_than=timedelta(days=30), keep=2), now=NOW)

    # The age rule takes the backfilled event; the count rule, which keeps the two that arrived last
    # (the backfilled one and the last), takes the first.
    assert deleted == 2
    assert await remaining(store) == [last.id]
    assert [c.event.id for c in recorder.changes[-2:]] == [backfilled.id, first.id]


async def test_prune_by_age_and_count_deletes_what_either_rule_says(recorder: Recorder) -> None:
    store = recorder.store
    events = await create_at(store, *days(50, 40, 20, 10, 5, 1))

    by_age = await prune(store, retention=Retention(older_than=timedelta(days=30), keep=5), now=NOW)
    assert by_age == 2  # the age rule is the stricter one here
    by_count = await prune(store, retention=Retention(older_than=timedelta(days=30), keep=2), now=NOW)
    assert by_count == 2  # and the count rule here

    assert await remaining(store) == [event.id for event in events[-2:]]


async def test_prune_with_nothing_to_delete_returns_zero_and_writes_nothing(recorder: Recorder) -> None:
    store = recorder.store
    assert await prune(store, retention=Retention(keep=10), now=NOW) == 0  # empty database
    await create_at(store, *days(3, 2, 1))
    published = len(recorder.changes)

    assert await prune(store, retention=Retention(older_than=timedelta(days=7), keep=3), now=NOW) == 0
    assert await prune(store, retention=Retention(), now=NOW) == 0

    assert len(recorder.changes) == published
    assert len(await remaining(store)) == 3


async def test_prune_deletes_oldest_first_one_batch_per_transaction(recorder: Recorder) -> None:
    store = recorder.store
    events = await create_at(store, *days(7, 6, 5, 4, 3, 2, 1))
    recorder.commits.clear()

    deleted = await prune(store, retention=Retention(keep=0), now=NOW, batch_size=3)

    assert deleted == 7
    assert [len(commit) for commit in recorder.commits] == [3, 3, 1]
    assert all(change.type == ChangeType.DELETED for change in recorder.changes)
    assert [change.event.id for change in recorder.changes] == [event.id for event in events]
    seqs = [change.seq for change in recorder.changes]
    assert seqs == sorted(seqs)
    assert await remaining(store) == []


async def test_pruned_events_leave_tombstones_that_replay_in_change_order(recorder: Recorder) -> None:
    store = recorder.store
    old = await create_at(store, *days(40, 35, 32))
    young = await create_at(store, *days(1))
    cursor = await store.last_change()

    await prune(store, retention=Retention(older_than=timedelta(days=30)), now=NOW, batch_size=2)

    replayed = await store.changes_since(cursor=cursor, limit=100)
    assert [(c.type, c.event) for c in replayed] == [
        (ChangeType.DELETED, DeletedEvent(id=event.id)) for event in old
    ]
    assert [c.seq for c in replayed] == list(range(cursor + 1, cursor + 4))
    # A client from before the events existed replays the survivor as logged and the rest as deleted.
    from_start = await store.changes_since(cursor=0, limit=100)
    assert [(c.type, c.event.id) for c in from_start] == [(ChangeType.LOGGED, young[0].id)] + [
        (ChangeType.DELETED, event.id) for event in old
    ]


# Tombstones and the replay floor.


async def test_drop_tombstones_keeps_the_recent_ones_and_raises_the_replay_floor(recorder: Recorder) -> None:
    store = recorder.store
    events = await create_at(store, *days(6, 5, 4, 3, 2, 1))  # changes 1-6
    assert await prune(store, retention=Retention(keep=2), now=NOW) == 4  # tombstones 7-10
    assert await store.replay_window() == (0, 10)
    published = len(recorder.changes)

    dropped = await drop_tombstones(store, keep_changes=2, batch_size=1)

    assert dropped == 2  # tombstones 7 and 8: more than two changes behind the head
    assert await store.replay_window() == (8, 10)
    assert [(c.seq, c.event.id) for c in await store.changes_since(cursor=8, limit=100)] == [
        (9, events[2].id),
        (10, events[3].id),
    ]
    assert len(recorder.changes) == published  # dropping a tombstone is not a change
    assert await drop_tombstones(store, keep_changes=2) == 0
    assert await store.replay_window() == (8, 10)


async def test_drop_tombstones_does_nothing_within_the_kept_changes(recorder: Recorder) -> None:
    store = recorder.store
    await create_at(store, *days(2, 1))
    await prune(store, retention=Retention(keep=0), now=NOW)

    assert await drop_tombstones(store, keep_changes=10) == 0
    assert await store.replay_window() == (0, 4)


# The pending timeout.


async def test_expire_pending_marks_old_pending_events_failed(recorder: Recorder) -> None:
    store = recorder.store
    stale = await create_at(store, timedelta(minutes=30), timedelta(minutes=11), status=EventStatus.PENDING)
    fresh = await create_at(store, timedelta(minutes=9), status=EventStatus.PENDING)
    finished = await create_at(store, timedelta(hours=1), status=EventStatus.SUCCESS)
    recorder.commits.clear()

    expired = await expire_pending(store, older_than=timedelta(minutes=10), now=NOW, batch_size=1)

    assert expired == 2
    assert [len(commit) for commit in recorder.commits] == [1, 1]
    assert [(c.type, c.event.id) for c in recorder.changes] == [
        (ChangeType.FAILED, event.id) for event in stale
    ]
    for event in stale:
        stored = await store.get(event_id=event.id)
        assert stored is not None
        assert stored.status == EventStatus.ERROR
        assert stored.error_message == "no completion arrived within 10m (the pending timeout)"
    assert (await store.get(event_id=fresh[0].id)) == fresh[0]
    assert (await store.get(event_id=finished[0].id)) == finished[0]
    assert await expire_pending(store, older_than=timedelta(minutes=10), now=NOW) == 0


async def test_expire_pending_uses_the_time_it_is_given(recorder: Recorder) -> None:
    store = recorder.store
    event, _ = await store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL))  # stamped now

    assert await expire_pending(store, older_than=timedelta(seconds=5)) == 0
    later = datetime.now(UTC) + timedelta(seconds=6)
    assert await expire_pending(store, older_than=timedelta(seconds=5), now=later) == 1

    stored = await store.get(event_id=event.id)
    assert stored is not None
    assert stored.error_message == "no completion arrived within 5s (the pending timeout)"


async def test_a_pending_call_stamped_ahead_times_out_at_most_that_much_later(recorder: Recorder) -> None:
    store = recorder.store
    # Five minutes ahead, as the default clock skew allows: the timeout counts from the timestamp.
    event = (await create_at(store, -timedelta(minutes=5), status=EventStatus.PENDING))[0]
    timeout = timedelta(minutes=10)

    assert await expire_pending(store, older_than=timeout, now=NOW + timedelta(minutes=14)) == 0
    assert await expire_pending(store, older_than=timeout, now=NOW + timedelta(minutes=15, seconds=1)) == 1
    stored = await store.get(event_id=event.id)
    assert stored is not None
    assert stored.status == EventStatus.ERROR


async def test_a_completion_after_the_timeout_wins(recorder: Recorder) -> None:
    store = recorder.store
    late, other = await create_at(store, *days(1, 1), status=EventStatus.PENDING)
    await expire_pending(store, older_than=timedelta(minutes=10), now=NOW)

    completed = await store.update(
        event_id=late.id, changes=ActivityUpdate(status=EventStatus.SUCCESS, duration_ms=900_000)
    )
    failed = await store.update(
        event_id=other.id, changes=ActivityUpdate(status=EventStatus.ERROR, error_message="boom")
    )

    assert completed is not None
    assert (completed.status, completed.duration_ms, completed.error_message) == (
        EventStatus.SUCCESS,
        900_000,
        None,  # the timeout's message does not outlive the completion that proves it wrong
    )
    assert recorder.changes[-2].type == ChangeType.COMPLETED
    assert failed is not None
    assert (failed.status, failed.error_message) == (EventStatus.ERROR, "boom")


async def test_success_keeps_an_error_message_that_the_timeout_did_not_write(recorder: Recorder) -> None:
    store = recorder.store
    event = (await create_at(store, *days(1), status=EventStatus.ERROR, error_message="retrying"))[0]

    updated = await store.update(event_id=event.id, changes=ActivityUpdate(status=EventStatus.SUCCESS))

    assert updated is not None
    assert (updated.status, updated.error_message) == (EventStatus.SUCCESS, "retrying")


async def test_the_timeout_never_overwrites_a_completion_committed_after_it_chose(
    recorder: Recorder,
) -> None:
    store = recorder.store
    event = (await create_at(store, *days(1), status=EventStatus.PENDING))[0]
    # The completion commits between the timeout's query and its write.
    await store.update(event_id=event.id, changes=ActivityUpdate(status=EventStatus.SUCCESS))
    published = len(recorder.changes)

    timeout = ActivityUpdateItem(id=event.id, status=EventStatus.ERROR, error_message="too late")
    outcome = await store.submit(WriteRequest(updates=[timeout], only_pending=True))

    assert outcome.updated == []
    assert len(recorder.changes) == published
    stored = await store.get(event_id=event.id)
    assert stored is not None
    assert stored.status == EventStatus.SUCCESS


# The periodic job's pass.


async def test_a_maintenance_pass_applies_every_setting(recorder: Recorder) -> None:
    store = recorder.store
    await create_at(store, *days(40), status=EventStatus.PENDING)
    stale = await create_at(store, timedelta(hours=1), status=EventStatus.PENDING)
    kept = await create_at(store, *days(3, 2, 1))
    settings = Settings(
        database_url=UNUSED_DATABASE, retention_days=30, retention_max_events=4, pending_timeout="10m"
    )

    report = await maintenance_for(store, settings).run_once(now=NOW)

    # The 40-day-old event is timed out first, then deleted by age; the count rule keeps four.
    assert (report.expired, report.deleted, report.tombstones_dropped) == (2, 1, 0)
    assert await remaining(store) == [event.id for event in kept] + [stale[0].id]


def test_maintenance_is_off_when_every_job_is_set_to_zero() -> None:
    store = ActivityStore(UNUSED_DATABASE)
    off = Settings(database_url=UNUSED_DATABASE, pending_timeout=0)
    assert not maintenance_for(store, off).enabled
    assert maintenance_for(store, Settings(database_url=UNUSED_DATABASE)).enabled  # 10m by default
    retention_only = Settings(database_url=UNUSED_DATABASE, pending_timeout="0s", retention_days=0.5)
    maintenance = maintenance_for(store, retention_only)
    assert maintenance.retention.older_than == timedelta(hours=12)
    assert maintenance.pending_timeout is None
