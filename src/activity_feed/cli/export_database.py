"""`activity-feed export --database-url`: the events read straight from a feed's database, which is only
read: never created, migrated or written. A database whose schema is not the one this version reads is
refused with the reason."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import sqlalchemy as sa

from activity_feed.cli.database import DatabaseRefusedError, require_existing_database
from activity_feed.errors import StoreUnavailableError
from activity_feed.store import ExportQuery
from activity_feed.store.engine import async_url, create_reader_engine, describe, failure_reason
from activity_feed.store.export import export_pages
from activity_feed.store.migrate import schema_problem


def database_chunks(database_url: str, query: ExportQuery) -> AsyncGenerator[bytes, None]:
    """The events matching `query` as JSON lines, oldest first, a page at a time.

    Raises `ConfigurationError` at once for a URL of an unknown kind, and `DatabaseRefusedError` for a
    SQLite file that is not there; as it is read, `DatabaseRefusedError` for a database at another
    schema, and `StoreUnavailableError` for one that cannot be read."""
    # The reader engine would create a missing file; an export must find one.
    require_existing_database(database_url)
    return _chunks(database_url, describe(async_url(database_url)), query)


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
