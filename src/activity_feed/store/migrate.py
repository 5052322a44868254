"""Run the Alembic migrations shipped inside the package, on a connection we open ourselves."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from activity_feed.store.engine import is_sqlite

_MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed number: instances that start together on one PostgreSQL take turns migrating.
_PG_MIGRATION_LOCK = 0x4163_7446
# Where a migration that takes a while (a table copy on SQLite) says so.
PROGRESS_LOGGER = "activity_feed.store.migrations"


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


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
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
