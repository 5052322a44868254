"""What the commands that open the feed's database themselves share: upgrading its schema (serve, demo,
db upgrade), and refusing a SQLite file that is not there (export --database-url, prune), which opening
it would create, empty.

SQLAlchemy is imported when used: it takes half a second to load, which commands that only read a feed
over HTTP (tail, export, check, mcp) should not pay at every start."""

from __future__ import annotations

import asyncio
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from activity_feed.errors import StoreUnavailableError

if TYPE_CHECKING:
    from activity_feed.store import ActivityStore


class DatabaseRefusedError(StoreUnavailableError):
    """The database is not there, or holds a schema this version does not read."""


def require_existing_database(database_url: str) -> None:
    """Raise `DatabaseRefusedError` when `database_url` names a SQLite file that does not exist, and
    `ConfigurationError` for a URL the feed cannot use; PostgreSQL says itself when a database is not
    there."""
    from activity_feed.store.engine import async_url, describe, is_sqlite

    url = async_url(database_url)
    if is_sqlite(url):
        path = Path(url.database or "").expanduser()
        if not path.is_file():
            raise DatabaseRefusedError(f"no database at {describe(url)}: {path} is not a file")


def migrate(database_url: str, *, progress: TextIO | None = sys.stderr) -> str:
    """Create the schema or upgrade it to the newest, printing the migrations' progress on `progress`
    (None: not at all); the database's URL as it may be printed. `StoreUnavailableError` says in one
    line why the database cannot be used."""
    from activity_feed.store import ActivityStore
    from activity_feed.store.migrate import progress_to

    store = ActivityStore(database_url)
    with progress_to(progress) if progress is not None else nullcontext():
        asyncio.run(_start_and_close(store))
    return store.url


async def _start_and_close(store: ActivityStore) -> None:
    try:
        await store.start(migrate=True)
    finally:
        await store.close()
