"""`to_public` and `new_public` build the public event without validating it, and `draft_row` with
`complete_row` a new event's stored values without SQLAlchemy's type processing: each must be
indistinguishable from what the slower way gives."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from activity_feed.schemas import ActivityCreate, ActivityPublic, EventStatus, EventType
from activity_feed.store.engine import create_reader_engine, create_sqlite_writer_engine
from activity_feed.store.migrate import upgrade
from activity_feed.store.rows import PUBLIC_COLUMNS, ROW_COLUMNS, new_public, to_public
from activity_feed.store.schema import activity_events, metadata
from activity_feed.store.sqlite_rows import SQLITE_INSERT, complete_row, draft_row, sqlite_datetime
from activity_feed.store.transaction import WriteRequest, transact


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seq": 7,
        "id": uuid.UUID("0190b3c4-1111-7000-8000-000000000001"),
        "timestamp": datetime(2026, 11, 26, 17, 58, 25, 508149, tzinfo=UTC),
        "tool_name": "get_property",
        "user_source": "Claude Desktop 0.9.3",
        "event_type": "tool_call",
        "status": "error",
        "data": {"arguments": {"property_id": 9}, "nested": [1, "é", None]},
        "duration_ms": 12.5,
        "error_message": "no property 9",
        "correlation_id": "conv-1",
        "session_id": "mcp-session-7",
        "updated_at": datetime(2026, 11, 26, 17, 58, 26, tzinfo=UTC),
        "change_seq": 9,
    }
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tool_name": None, "user_source": None, "duration_ms": None, "error_message": None},
        {"event_type": EventType.API_REQUEST, "status": EventStatus.SUCCESS, "data": {}},
    ],
    ids=["every-field", "nulls", "enum-members"],
)
def test_to_public_equals_a_validated_event(overrides: dict[str, Any]) -> None:
    row = _row(**overrides)
    built = to_public(row)
    validated = ActivityPublic.model_validate({column: row[column] for column in PUBLIC_COLUMNS})

    assert built == validated
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.model_dump(exclude_unset=True) == validated.model_dump(exclude_unset=True)
    assert built.model_fields_set == validated.model_fields_set
    assert type(built.event_type) is EventType
    assert type(built.status) is EventStatus


def test_events_built_from_rows_do_not_share_state() -> None:
    first, second = to_public(_row()), to_public(_row())
    first.tool_name = "renamed"

    assert second.tool_name == "get_property"
    assert first.model_fields_set is not second.model_fields_set


def test_an_unknown_enum_value_in_a_row_fails_loudly() -> None:
    with pytest.raises(KeyError):
        to_public(_row(status="maybe"))


def _create_of(row: dict[str, Any]) -> ActivityCreate:
    return ActivityCreate.model_validate({column: row[column] for column in PUBLIC_COLUMNS})


def test_new_public_equals_the_event_as_stored_and_read_back() -> None:
    row = _row()
    event = _create_of(row)

    built = new_public(event, row["id"], row["timestamp"])

    assert built == to_public(row)
    assert built.model_dump_json() == to_public(row).model_dump_json()
    assert built.model_fields_set == to_public(row).model_fields_set


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tool_name": None, "user_source": None, "duration_ms": None, "error_message": None},
        {"correlation_id": None, "session_id": None, "data": {}, "duration_ms": 0.0},
        {"timestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},  # no microseconds
        {"timestamp": datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC)},  # a year of three digits
        {"timestamp": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))},
        {"timestamp": datetime(2026, 1, 2, 3, 4, 5, 6), "updated_at": datetime(2026, 1, 2, 3, 4, 6)},
        {"data": {"text": 'é " \\ \n \u2028 😀', "big": 2**63 - 1, "float": 1.5e300, "list": [{}]}},
        {"timestamp": None},  # the event takes its transaction's time
    ],
    ids=[
        "every-field",
        "nulls",
        "empty",
        "whole-second",
        "year-999",
        "other-zone",
        "naive",
        "odd-json",
        "no-timestamp",
    ],
)
def test_sqlite_rows_store_exactly_what_sqlalchemy_stores(tmp_path: Path, overrides: dict[str, Any]) -> None:
    engine = create_sqlite_writer_engine(f"sqlite:///{tmp_path / 'rows.db'}")
    try:
        metadata.create_all(engine)
        through_core = _row(**overrides, seq=7, change_seq=7)
        if through_core["timestamp"] is None:
            through_core["timestamp"] = through_core["updated_at"]
        event = _create_of({**_row(**overrides), "id": uuid.uuid4()})
        text = draft_row(event)
        direct = complete_row(text, seq=8, now=sqlite_datetime(through_core["updated_at"]))
        with engine.begin() as conn:
            conn.execute(sa.insert(activity_events), through_core)
            conn.exec_driver_sql(SQLITE_INSERT, [direct])
        with engine.connect() as conn:
            columns = ", ".join(ROW_COLUMNS)
            stored = conn.exec_driver_sql(f"SELECT {columns} FROM activity_events ORDER BY seq")
            core_values, direct_values = (dict(zip(ROW_COLUMNS, row, strict=True)) for row in stored)
            read_back = conn.execute(sa.select(activity_events).order_by(activity_events.c.seq)).mappings()
            core_row, direct_row = (dict(row) for row in read_back)
    finally:
        engine.dispose()

    differing = {"seq", "id", "change_seq"}
    assert event.id is not None
    assert text.id == event.id
    assert direct_values["id"] == event.id.hex
    assert {k: v for k, v in direct_values.items() if k not in differing} == {
        k: v for k, v in core_values.items() if k not in differing
    }
    assert direct_row == {**core_row, "seq": 8, "id": event.id, "change_seq": 8}


def test_an_event_without_id_or_timestamp_gets_a_new_id_and_its_transaction_time() -> None:
    first, second = (draft_row(ActivityCreate(event_type=EventType.TOOL_CALL)) for _ in range(2))

    assert first.id != second.id
    assert first.id_hex == first.id.hex
    row = complete_row(first, seq=3, now="2026-11-27 01:02:03.000004")
    assert row[ROW_COLUMNS.index("timestamp")] == "2026-11-27 01:02:03.000004"
    assert row[ROW_COLUMNS.index("updated_at")] == "2026-11-27 01:02:03.000004"
    assert (row[ROW_COLUMNS.index("seq")], row[ROW_COLUMNS.index("change_seq")]) == (3, 3)


@pytest.mark.parametrize("variable_limit", [999, 32766])
async def test_many_rows_per_insert_within_sqlite_parameter_limit(
    tmp_path: Path, variable_limit: int
) -> None:
    # 999 parameters per statement is the cap of SQLite before 3.32, which some systems still have.
    url = f"sqlite:///{tmp_path / 'many.db'}"
    reader = create_reader_engine(url)
    try:
        await upgrade(reader)
    finally:
        await reader.dispose()
    engine = create_sqlite_writer_engine(url)
    sa.event.listen(
        engine,
        "connect",
        lambda connection, _record: connection.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit),
    )
    events = [
        ActivityCreate(id=uuid.uuid4(), event_type=EventType.TOOL_CALL, tool_name=f"tool-{i}", data={"n": i})
        for i in range(1000)
    ]
    try:
        with engine.begin() as conn:
            outcomes, changes, _ = transact(conn, group=[WriteRequest(creates=events)])
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(activity_events.c.seq, activity_events.c.id, activity_events.c.data).order_by(
                    activity_events.c.seq
                )
            ).all()
    finally:
        engine.dispose()

    assert len(outcomes[0].created) == 1000
    assert [change.seq for change in changes] == list(range(1, 1001))
    assert [(row.seq, row.id, row.data) for row in stored] == [
        (i + 1, event.id, {"n": i}) for i, event in enumerate(events)
    ]


def test_the_one_list_of_columns_is_the_tables() -> None:
    assert tuple(column.name for column in activity_events.columns) == ROW_COLUMNS
    assert set(PUBLIC_COLUMNS) == set(ActivityPublic.model_fields)
