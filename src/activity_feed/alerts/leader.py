"""Which instance evaluates the rules: exactly one per database.

On PostgreSQL the evaluator holds a session-level advisory lock on a connection of its own (no pool, no
transaction left open). The others try for it periodically; when the evaluator dies its connection
closes, the lock goes with it, and the next to try takes over. On SQLite the one instance evaluates."""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

log = logging.getLogger(__name__)

# A key of the feed's own among PostgreSQL's advisory locks ("ActA"; migrations use "ActF").
ALERTS_LOCK_KEY = 0x4163_7441
CONNECT_TIMEOUT_SECONDS = 5.0
QUERY_TIMEOUT_SECONDS = 5.0


class Leadership(Protocol):
    async def acquire(self) -> bool:
        """Try once to become the evaluator; True if this instance is (or already was)."""
        ...

    async def still_held(self) -> bool:
        """Whether this instance is still the evaluator (False once its connection is lost)."""
        ...

    async def release(self) -> None: ...


class SoleInstance:
    """SQLite: one instance writes the file, and it evaluates."""

    async def acquire(self) -> bool:
        return True

    async def still_held(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class AdvisoryLock:
    """PostgreSQL: `pg_try_advisory_lock` on a dedicated asyncpg connection, named in
    `pg_stat_activity` as `activity-feed alerts <pid>` so that an operator can see which process
    evaluates."""

    def __init__(self, dsn: str, key: int = ALERTS_LOCK_KEY) -> None:
        self._dsn = dsn
        self._key = key
        self._conn: Any = None
        self._held = False
        self._failing = False

    async def acquire(self) -> bool:
        if self._held and await self.still_held():
            return True
        try:
            if self._conn is None:
                # The postgres extra, present whenever the database is PostgreSQL; it ships no types.
                import asyncpg  # type: ignore[import-untyped]

                self._conn = await asyncpg.connect(
                    self._dsn,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    command_timeout=QUERY_TIMEOUT_SECONDS,
                    server_settings={"application_name": f"activity-feed alerts {os.getpid()}"},
                )
            self._held = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key))
        except Exception as exc:  # boundary: the database may be away; the next try may work
            if not self._failing:
                self._failing = True
                log.warning("alerts: cannot ask PostgreSQL who evaluates the rules (%s); retrying", exc)
            await self._drop()
            return False
        if self._failing:
            self._failing = False
            log.warning("alerts: PostgreSQL answers again")
        return self._held

    async def still_held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        try:
            await self._conn.fetchval("SELECT 1")
        except Exception as exc:  # boundary: a lost connection means a lost lock
            log.warning("alerts: lost the connection that holds the evaluator's lock (%s)", exc)
            await self._drop()
            return False
        return True

    async def release(self) -> None:
        # Closing the session releases its advisory locks.
        await self._drop()

    async def _drop(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close(timeout=QUERY_TIMEOUT_SECONDS)
            except Exception:  # boundary: already broken; terminate is all that is left
                conn.terminate()


def leadership_for(dsn: str | None) -> Leadership:
    """The advisory lock for a PostgreSQL DSN; the sole instance for SQLite (None)."""
    return SoleInstance() if dsn is None else AdvisoryLock(dsn)
