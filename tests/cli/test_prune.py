"""`activity-feed prune`, the real console script in a subprocess, on a SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from activity_feed.schemas import ActivityCreate, EventType
from activity_feed.store import ActivityStore
from tests.cli.test_main import clean_env, run_cli


def seed(url: str, *ages_in_days: float) -> None:
    """One event per age, stamped that many days ago."""

    async def write() -> None:
        store = ActivityStore(url)
        await store.start()
        try:
            now = datetime.now(UTC)
            for age in ages_in_days:
                stamp = now - timedelta(days=age)
                await store.create(event=ActivityCreate(event_type=EventType.TOOL_CALL, timestamp=stamp))
        finally:
            await store.close()

    asyncio.run(write())


def count(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        (rows,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(rows)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "feed.db"
    seed(f"sqlite:///{path}", 60, 45, 31, 20, 1)
    return path


def test_prune_older_than_removes_old_events_and_prints_the_count(db: Path) -> None:
    result = run_cli(["prune", "--older-than", "30d", "--database-url", f"sqlite:///{db}"], db.parent)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"activity-feed: removed 3 events from sqlite+aiosqlite:///{db}\n"
    assert count(db, "activity_events") == 2
    assert count(db, "activity_deletions") == 3  # stream clients that reconnect replay the deletions


def test_prune_keep_leaves_the_newest(db: Path) -> None:
    result = run_cli(["prune", "--keep", "4", "--database-url", f"sqlite:///{db}"], db.parent)

    assert result.returncode == 0, result.stderr
    assert "removed 1 event from" in result.stdout
    assert count(db, "activity_events") == 4


def test_prune_with_both_rules_applies_either(db: Path) -> None:
    args = ["prune", "--older-than", "50d", "--keep", "2"]
    result = run_cli(args, db.parent, clean_env(ACTIVITY_FEED_DATABASE_URL=f"sqlite:///{db}"))

    assert result.returncode == 0, result.stderr
    assert "removed 3 events" in result.stdout
    assert count(db, "activity_events") == 2
    again = run_cli(args, db.parent, clean_env(ACTIVITY_FEED_DATABASE_URL=f"sqlite:///{db}"))
    assert "removed 0 events" in again.stdout


def test_prune_drops_tombstones_beyond_the_replay_limit(db: Path) -> None:
    env = clean_env(ACTIVITY_FEED_DATABASE_URL=f"sqlite:///{db}", ACTIVITY_FEED_REPLAY_LIMIT="2")

    result = run_cli(["prune", "--keep", "1"], db.parent, env)

    assert result.returncode == 0, result.stderr
    # Changes 1-5 created the events, 6-9 deleted four: the tombstones of 6 and 7 are more than two
    # changes behind and no replay can reach them.
    assert result.stdout == (
        f"activity-feed: removed 4 events from sqlite+aiosqlite:///{db}; dropped 2 old tombstones\n"
    )
    assert count(db, "activity_deletions") == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--older-than", "30x"], "activity-feed: --older-than: not a duration: '30x' (use a number with"),
        (["--older-than=-1d"], "activity-feed: --older-than: not a duration: '-1d'"),
        (["--keep", "-1"], "activity-feed: --keep: must be from 1 to 1000000000000, not -1"),
        (
            ["--keep", "0"],
            "activity-feed: --keep: must be 1 or more, not 0 (to delete every event, use --all)",
        ),
        (["--keep", "1" + "0" * 25], "activity-feed: --keep: must be from 1 to 1000000000000, not 1000"),
        (["--older-than", "99999999d"], "activity-feed: --older-than: at most 36500d (100 years), not '9"),
        (
            ["--older-than", "99999999999d"],
            "activity-feed: --older-than: at most 36500d (100 years), not '99999999999d'\n",
        ),
        (["--older-than", "1" + "0" * 400], "activity-feed: --older-than: at most 36500d (100 years), not"),
        (
            ["--older-than", "0"],
            "activity-feed: --older-than: must be more than 0 (to delete every event, use --all)\n",
        ),
        (["--older-than", "0.0d"], "activity-feed: --older-than: must be more than 0 (to delete every event"),
        (["--older-than", "0s", "--keep", "2"], "activity-feed: --older-than: must be more than 0 (to"),
        (["--all", "--keep", "3"], "activity-feed: --all deletes every event: it cannot be combined with"),
        (["--all", "--older-than", "1d"], "activity-feed: --all deletes every event: it cannot be combined"),
        ([], "activity-feed: prune needs --older-than, --keep or both (or --all to delete every event)"),
    ],
)
def test_prune_usage_errors_are_one_line_and_exit_2(db: Path, args: list[str], message: str) -> None:
    result = run_cli(["prune", *args, "--database-url", f"sqlite:///{db}"], db.parent)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(message)
    assert count(db, "activity_events") == 5


def test_prune_all_deletes_every_event_and_leaves_their_tombstones(db: Path) -> None:
    result = run_cli(["prune", "--all", "--database-url", f"sqlite:///{db}"], db.parent)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"activity-feed: removed 5 events from sqlite+aiosqlite:///{db}\n"
    assert count(db, "activity_events") == 0
    assert count(db, "activity_deletions") == 5


def test_prune_on_an_unreachable_database_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = "postgresql://nobody@127.0.0.1:1/feed"

    result = run_cli(["prune", "--keep", "10", "--database-url", url], tmp_path)

    assert result.returncode == 1
    assert result.stderr.startswith("activity-feed: cannot use the database at postgresql+asyncpg://")
    assert result.stderr.count("\n") == 1


def test_prune_refuses_a_sqlite_file_that_is_not_there_as_export_does(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    url = f"sqlite:///{missing}"

    pruned = run_cli(["prune", "--all", "--database-url", url], tmp_path)
    exported = run_cli(["export", "--database-url", url], tmp_path)

    line = f"activity-feed: no database at sqlite+aiosqlite:///{missing}: {missing} is not a file\n"
    assert (pruned.returncode, pruned.stdout, pruned.stderr) == (1, "", line)
    assert (exported.returncode, exported.stderr) == (1, line)
    assert not missing.exists()  # not created, empty, and "pruned"


def test_prune_help_documents_its_options(tmp_path: Path) -> None:
    result = run_cli(["prune", "--help"], tmp_path)

    assert result.returncode == 0
    for option in ("--older-than", "--keep", "--all", "--database-url"):
        assert option in result.stdout
