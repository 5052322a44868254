"""`activity-feed export --database-url`: the events read straight from a feed's database, which is only
read: never created, migrated or written. A database whose schema is not the one this version reads is
refused with the reason."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import sqlalchemy as sa

from activity_feed.errors import StoreUnavailableError
from activity_feed.store import ExportQuery
from activity_feed.store.engine import async_url, create_reader_engine, describe, failure_reason, is_sqlite
from activity_feed.store.export import export_pages
from activity_feed.store.migrate import schema_problem


class DatabaseRefusedError(StoreUnavailableError):
    """The database is not there, or holds a schema this version does not read."""


def database_chunks(database_url: str, query: ExportQuery) -> AsyncGenerator[bytes, None]:
    """The events matching `query` as JSON lines, oldest first, a page at a time.

    Raises `ConfigurationError` at once for a URL of an unknown kind, and `DatabaseRefusedError` for a
    SQLite file that is not there; as it is read, `DatabaseRefusedError` for a database at another
    schema, and `StoreUnavailableError` for one that cannot be read."""
    url = async_url(database_url)
    if is_sqlite(url):
        # The reader engine would create a missing file; an export must find one.
        path = Path(url.database or "").expanduser()
        if not url.database or url.database == ":memory:" or not path.is_file():
            raise DatabaseRefusedError(f"no database at {describe(url)}: {path} is not a file")
    return _chunks(database_url, describe(url), query)


async def _chunks(database_url: str, shown: str, query: ExportQuery) -> AsyncGenerator[bytes, None]:
    engine = create_reader_engine(database_url, connections=1)
    try:
        async with engine.connect() as conn:
            problem = await schema_problem(conn)
        if problem is not None:
            raise DatabaseRefusedError(f"cannot export the database at {shown}: {problem}")
        async for page in export_pages(engine.connect, query):
            yield page.lines
    except (OSError, sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
        raise StoreUnavailableError(f"cannot read the database at {shown}: {failure_reason(exc)}") from None
    finally:
        await engine.dispose()
