"""The property-management dataset both examples share: properties, tenants, maintenance, viewings.

A SQLite file at `PROPERTY_DB_PATH` (default: `activity-feed-examples/properties.db` in the system's temp
folder, since the data is a disposable example), created and seeded on first use. Every call opens its
own short connection, so the MCP server (tools run in worker threads) and the HTTP API (a thread pool)
can share one file without sharing a connection.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from activity_feed.examples import property_seed as seed

PRIORITIES = ("low", "medium", "high", "urgent")
STATUSES = ("open", "in_progress", "resolved")
VIEWING_MINUTES = 30
MAX_DESCRIPTION_CHARS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS properties (
    id INTEGER PRIMARY KEY, address TEXT NOT NULL, city TEXT NOT NULL, postcode TEXT NOT NULL,
    monthly_rent INTEGER NOT NULL, bedrooms INTEGER NOT NULL, bathrooms INTEGER NOT NULL,
    property_type TEXT NOT NULL, available INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tenants (
    id INTEGER PRIMARY KEY, property_id INTEGER NOT NULL REFERENCES properties(id), name TEXT NOT NULL,
    email TEXT NOT NULL, phone TEXT NOT NULL, lease_start TEXT NOT NULL, lease_end TEXT NOT NULL,
    monthly_rent INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS maintenance_requests (
    id INTEGER PRIMARY KEY, property_id INTEGER NOT NULL REFERENCES properties(id),
    description TEXT NOT NULL, priority TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS viewings (
    id INTEGER PRIMARY KEY, property_id INTEGER NOT NULL REFERENCES properties(id),
    visitor_name TEXT NOT NULL, starts_at TEXT NOT NULL
);
"""


class PropertyDataError(Exception):
    """A request the dataset cannot satisfy; the message is meant for the caller."""


class NotFoundError(PropertyDataError):
    """No property (or other record) with that id."""


class InvalidRequestError(PropertyDataError):
    """An argument is out of range, badly formed, or conflicts with existing data."""


def default_db_path() -> Path:
    """`PROPERTY_DB_PATH`, or a file in the system's temp folder."""
    configured = os.environ.get("PROPERTY_DB_PATH")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "activity-feed-examples" / "properties.db"


def _switch_to_wal(conn: sqlite3.Connection, timeout: float = 10.0) -> None:
    # Switching the journal mode while another opener is creating the same new file can answer "database
    # is locked" at once, without waiting out the busy timeout: try again, within the same bound.
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class PropertyData:
    """Reads and writes the example dataset at `path` (created and seeded on first use)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self._ensure_schema()
        conn = self._open()
        try:
            with conn:  # commits on success, rolls back on error
                yield conn
        finally:
            conn.close()

    def _open(self) -> sqlite3.Connection:
        # Two example processes may write at once: WAL lets readers carry on, and the busy timeout
        # makes a writer wait its turn instead of failing with "database is locked".
        conn = sqlite3.connect(self.path, timeout=10)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _ensure_schema(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._open()
        try:
            _switch_to_wal(conn)
            conn.executescript(_SCHEMA)
            # IMMEDIATE takes the write lock before the emptiness check, so two processes starting
            # together on a new file seed it once.
            conn.execute("BEGIN IMMEDIATE")
            if conn.execute("SELECT COUNT(*) FROM properties").fetchone()[0] == 0:
                conn.executemany("INSERT INTO properties VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", seed.PROPERTIES)
                conn.executemany(
                    "INSERT INTO tenants (property_id, name, email, phone, lease_start, lease_end, "
                    "monthly_rent) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    seed.TENANTS,
                )
                conn.executemany(
                    "INSERT INTO maintenance_requests (property_id, description, priority, status, "
                    "created_at) VALUES (?, ?, ?, ?, ?)",
                    seed.MAINTENANCE,
                )
                conn.executemany(
                    "INSERT INTO viewings (property_id, visitor_name, starts_at) VALUES (?, ?, ?)",
                    seed.VIEWINGS,
                )
            conn.execute("COMMIT")
        finally:
            conn.close()
        self._ready = True

    # Reads

    def search_properties(
        self, *, city: str | None = None, max_rent: int | None = None, min_bedrooms: int | None = None
    ) -> list[dict[str, Any]]:
        """Properties matching every filter given (city is case-insensitive), cheapest first."""
        clauses: list[str] = []
        params: list[Any] = []
        if city:
            clauses.append("city = ? COLLATE NOCASE")
            params.append(city.strip())
        if max_rent is not None:
            clauses.append("monthly_rent <= ?")
            params.append(max_rent)
        if min_bedrooms is not None:
            clauses.append("bedrooms >= ?")
            params.append(min_bedrooms)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as conn:
            rows = conn.execute(f"SELECT * FROM properties {where} ORDER BY monthly_rent, id", params)
            return [_property(row) for row in rows]

    def get_property(self, property_id: int) -> dict[str, Any]:
        """One property with its tenant count and open maintenance count; NotFoundError if unknown."""
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM properties WHERE id = ?", (property_id,)).fetchone()
            if row is None:
                raise NotFoundError(f"no property with id {property_id}")
            result = _property(row)
            result["tenant_count"] = conn.execute(
                "SELECT COUNT(*) FROM tenants WHERE property_id = ?", (property_id,)
            ).fetchone()[0]
            result["open_maintenance_requests"] = conn.execute(
                "SELECT COUNT(*) FROM maintenance_requests WHERE property_id = ? AND status != 'resolved'",
                (property_id,),
            ).fetchone()[0]
            return result

    def list_tenants(self, property_id: int) -> list[dict[str, Any]]:
        """The tenants of a property (an empty list for a vacant one); NotFoundError if unknown."""
        with self._connect() as conn:
            _require_property(conn, property_id)
            rows = conn.execute("SELECT * FROM tenants WHERE property_id = ? ORDER BY id", (property_id,))
            return [dict(row) for row in rows]

    def list_maintenance_requests(
        self, *, property_id: int | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Maintenance requests, newest first, optionally for one property and of one status."""
        clauses: list[str] = []
        params: list[Any] = []
        if status is not None:
            if status not in STATUSES:
                raise InvalidRequestError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
            clauses.append("status = ?")
            params.append(status)
        with self._connect() as conn:
            if property_id is not None:
                _require_property(conn, property_id)
                clauses.append("property_id = ?")
                params.append(property_id)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = conn.execute(
                f"SELECT * FROM maintenance_requests {where} ORDER BY created_at DESC", params
            )
            return [dict(row) for row in rows]

    def list_viewings(self, property_id: int) -> list[dict[str, Any]]:
        """Viewings booked for a property, soonest first."""
        with self._connect() as conn:
            _require_property(conn, property_id)
            rows = conn.execute(
                "SELECT * FROM viewings WHERE property_id = ? ORDER BY starts_at", (property_id,)
            )
            return [dict(row) for row in rows]

    # Writes

    def create_maintenance_request(
        self, *, property_id: int, description: str, priority: str
    ) -> dict[str, Any]:
        """Open a maintenance request; InvalidRequestError for a bad priority or an empty description."""
        priority = priority.strip().lower()
        if priority not in PRIORITIES:
            raise InvalidRequestError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}")
        description = description.strip()
        if not description:
            raise InvalidRequestError("description must not be empty")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidRequestError(f"description must be at most {MAX_DESCRIPTION_CHARS} characters")
        created_at = datetime.now(UTC).isoformat(timespec="seconds")
        with self._connect() as conn:
            _require_property(conn, property_id)
            cursor = conn.execute(
                "INSERT INTO maintenance_requests (property_id, description, priority, status, created_at) "
                "VALUES (?, ?, ?, 'open', ?)",
                (property_id, description, priority, created_at),
            )
            row = conn.execute(
                "SELECT * FROM maintenance_requests WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
            return dict(row)

    def schedule_viewing(self, *, property_id: int, visitor_name: str, when: str) -> dict[str, Any]:
        """Book a 30-minute viewing at `when` (ISO 8601; no zone means UTC), which must be in the future
        and not overlap another viewing of the same property."""
        starts_at = parse_future_datetime(when)
        visitor_name = visitor_name.strip()
        if not visitor_name:
            raise InvalidRequestError("visitor_name must not be empty")
        with self._connect() as conn:
            _require_property(conn, property_id)
            for row in conn.execute("SELECT starts_at FROM viewings WHERE property_id = ?", (property_id,)):
                other = datetime.fromisoformat(row["starts_at"])
                if abs(other - starts_at) < timedelta(minutes=VIEWING_MINUTES):
                    raise InvalidRequestError(
                        f"property {property_id} already has a viewing at {other.isoformat()}; "
                        f"viewings last {VIEWING_MINUTES} minutes"
                    )
            cursor = conn.execute(
                "INSERT INTO viewings (property_id, visitor_name, starts_at) VALUES (?, ?, ?)",
                (property_id, visitor_name, starts_at.isoformat()),
            )
            row = conn.execute("SELECT * FROM viewings WHERE id = ?", (cursor.lastrowid,)).fetchone()
            return dict(row)


def parse_future_datetime(value: str) -> datetime:
    """An ISO 8601 date-time in the future, as an aware UTC datetime; InvalidRequestError otherwise."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidRequestError(
            f"when must be an ISO 8601 date and time such as 2030-05-01T14:30:00, not {value!r}"
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if parsed <= datetime.now(UTC):
        raise InvalidRequestError(f"when must be in the future, not {parsed.isoformat()}")
    return parsed


def _require_property(conn: sqlite3.Connection, property_id: int) -> None:
    if conn.execute("SELECT 1 FROM properties WHERE id = ?", (property_id,)).fetchone() is None:
        raise NotFoundError(f"no property with id {property_id}")


def _property(row: sqlite3.Row) -> dict[str, Any]:
    result = dict(row)
    result["available"] = bool(result["available"])
    return result
