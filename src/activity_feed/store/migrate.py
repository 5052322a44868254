"""Run the Alembic migrations shipped inside the package, on a connection we open ourselves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from activity_feed.store.engine import is_sqlite

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed number: instances that start together on one PostgreSQL take turns migrating.
_PG_MIGRATION_LOCK = 0x4163_7446
# Where a migration that takes a while (a table copy on SQLite) says so.
PROGRESS_LOGGER = "activity_feed.store.migrations"
# The revisions that SQLite applies by copying activity_events (it cannot alter a table in place).
_SQLITE_COPIES = {"0003": "two checks rewritten", "0004": "session_id added"}


@contextmanager
def progress_to(stream: TextIO) -> Iterator[None]:
    """Print the migrations' progress lines on `stream` while the block runs (the CLI's commands; an app
    that embeds the feed sees them through its own logging instead)."""
    logger = logging.getLogger(PROGRESS_LOGGER)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("activity-feed: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def known_revisions() -> list[str]:
    """The schema revisions this version ships, newest first (the first is the head)."""
    return [script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()]


def _has_version_table(connection: Connection) -> bool:
    return inspect(connection).has_table("alembic_version")


async def current_revision(connection: AsyncConnection) -> str | None:
    """The schema revision the database is at, without changing it; None when it has no schema."""
    if not await connection.run_sync(_has_version_table):
        return None
    found = await connection.execute(text("SELECT version_num FROM alembic_version"))
    version = found.scalar()
    return None if version is None else str(version)


async def schema_problem(connection: AsyncConnection) -> str | None:
    """Why the database cannot be read as it is by this version (its schema missing, older, or newer
    than the one it ships), or None when the schema is the one it reads. Changes nothing."""
    revisions = known_revisions()
    current = await current_revision(connection)
    if current is None:
        return "it holds no Activity Feed schema (no alembic_version table, or an empty one)"
    if current == revisions[0]:
        return None
    if current in revisions:
        return (
            f"its schema is at revision {current}, older than this activity-feed reads ({revisions[0]}): "
            "upgrade it first with `activity-feed db upgrade`, or let the service that uses it do so"
        )
    return (
        f"its schema is at revision {current}, which this activity-feed does not know (it reads "
        f"{revisions[0]}): a newer version wrote it; use that version"
    )


def _say_sqlite_copies(connection: Connection, config: Config, revision: str) -> None:
    """Before an upgrade that copies the events' table on SQLite: say so once, with how long it takes;
    nothing when there is no event to copy (a new database), or nothing to copy it for."""
    tables = inspect(connection)
    if connection.dialect.name != "sqlite" or not tables.has_table("activity_events"):
        return
    versioned = tables.has_table("alembic_version")
    current = (
        connection.execute(text("SELECT version_num FROM alembic_version")).scalar() if versioned else None
    )
    try:
        ahead = ScriptDirectory.from_config(config).iterate_revisions(revision, current or "base")
        copies = [_SQLITE_COPIES[script.revision] for script in ahead if script.revision in _SQLITE_COPIES]
    except CommandError:  # a revision it does not know, or below the current one: alembic says so
        return
    if not copies:  # an up-to-date database: no count at every start
        return
    events = connection.execute(text("SELECT count(*) FROM activity_events")).scalar() or 0
    if events:
        times = {1: "once", 2: "twice"}.get(len(copies), f"{len(copies)} times")
        noun = "event" if events == 1 else "events"
        logging.getLogger(PROGRESS_LOGGER).info(
            f"upgrading activity_events ({', '.join(reversed(copies))}): SQLite copies the table of "
            f"{events:,} {noun} {times}, about half a minute per million events each time"
        )


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    _say_sqlite_copies(connection, config, revision)
    command.upgrade(config, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Create or upgrade the schema to `revision`. Safe to call from several processes at once."""
    async with engine.connect() as connection:
        if not is_sqlite(engine.url):
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            await connection.commit()
        try:
            await connection.run_sync(_upgrade, revision)
            await connection.commit()
        finally:
            if not is_sqlite(engine.url):
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_MIGRATION_LOCK})
                await connection.commit()
