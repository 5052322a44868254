"""Everything that differs between SQLite and PostgreSQL lives here: URLs, drivers, pragmas, pools."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from activity_feed.errors import ConfigurationError, StoreUnavailableError
from activity_feed.store.checkpoint import WRITER_AUTOCHECKPOINT_PAGES

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql", "sqlite3": "sqlite"}


def async_url(database_url: str) -> URL:
    """Turn what a user writes (`sqlite:///f.db`, `postgresql://...`) into a URL with an async driver."""
    try:
        url = make_url(database_url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError and ValueError alike for bad URLs.
        raise ConfigurationError(f"not a database URL: {database_url!r}") from exc
    backend = _ALIASES.get(url.get_backend_name(), url.get_backend_name())
    if backend not in _ASYNC_DRIVERS:
        raise ConfigurationError(
            f"unsupported database {url.get_backend_name()!r}: use sqlite:///path or postgresql://..."
        )
    url = url.set(drivername=_ASYNC_DRIVERS[backend])
    if is_sqlite(url) and _in_memory(url):
        # Every connection of the pools (and the writer's) would open a database of its own, empty.
        raise ConfigurationError(
            f"{database_url!r} is an in-memory SQLite database, which the feed cannot use (each connection "
            "would get its own empty database): give a file, e.g. sqlite:///./activity.db"
        )
    return url


def _in_memory(url: URL) -> bool:
    database = url.database or ""
    return (
        database in ("", ":memory:")
        or database.startswith("file::memory:")
        or url.query.get("mode") == "memory"
    )


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def postgres_dsn(database_url: str) -> str | None:
    """The URL as asyncpg takes it, for a connection of its own outside any pool (a session-level
    advisory lock, alerts/leader.py); None for SQLite."""
    url = async_url(database_url)
    if is_sqlite(url):
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def describe(url: URL) -> str:
    """The URL as it may be printed: without its password."""
    return url.render_as_string(hide_password=True)


def json_dumps(value: Any) -> str:
    """JSON text as both engines store `data`."""
    return orjson.dumps(value).decode()


# How long SQLite waits for another process's write lock (`activity-feed db upgrade`, a prune) before
# failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5000


def _set_sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WAL lets readers go on while the writer commits. synchronous=FULL fsyncs the log at every commit,
    # so a transaction that was acknowledged survives a process crash and a power cut alike; the group
    # commit in `writer.py` shares one fsync between many requests, which is what keeps it fast.
    # busy_timeout makes a second process (`activity-feed db upgrade`, a prune) wait instead of failing.
    # Autocommit off at the driver level lets us issue BEGIN ourselves (see `_begin_immediate`).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_deferred(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN")


def _begin_immediate(conn: Any) -> None:
    # The writer takes SQLite's write lock when its transaction starts, not at its first write, so that
    # another process writing at the same time waits (busy_timeout) instead of failing with SQLITE_BUSY.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# How long the service waits on PostgreSQL (to connect, for one statement, for a pooled connection)
# before it answers 503. asyncpg waits 60 s to connect and forever for a statement, and SQLAlchemy 30 s
# for the pool; behind a dead link (a partition: no reset ever comes) every request would hang that long.
DEFAULT_DATABASE_TIMEOUT_SECONDS = 5.0


def create_reader_engine(
    database_url: str,
    *,
    timeout: float | None = DEFAULT_DATABASE_TIMEOUT_SECONDS,
    connections: int | None = None,
) -> AsyncEngine:
    """The engine for reads (and PostgreSQL's writes): aiosqlite or asyncpg, pooled.

    On PostgreSQL, `timeout` bounds connecting, each statement and the wait for a pooled connection;
    None leaves statements unbounded, as migrations need (an index on a large table takes its time).
    `connections` makes the pool exactly that many connections (the default lets it grow for bursts)."""
    url = async_url(database_url)
    fixed = {} if connections is None else {"pool_size": connections, "max_overflow": 0}
    if is_sqlite(url):
        _prepare_file(Path(url.database or "").expanduser(), url)
        engine = create_async_engine(
            url,
            json_serializer=json_dumps,
            json_deserializer=orjson.loads,
            **({"pool_size": 4, "max_overflow": 4} | fixed),
        )
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _begin_deferred)
        return engine
    connect_timeout = timeout if timeout is not None else DEFAULT_DATABASE_TIMEOUT_SECONDS
    engine = create_async_engine(
        url,
        json_serializer=json_dumps,
        json_deserializer=orjson.loads,
        **({"pool_size": 10, "max_overflow": 10} | fixed),
        pool_timeout=connect_timeout,
        # A pooled connection may have died with the database (a restart, a cut link): each checkout
        # tests it first, and a failed test discards every connection made before it, so that the pool
        # recovers on its own once the database is back (SQLAlchemy's "pessimistic" disconnect handling).
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout, "command_timeout": timeout},
    )
    event.listen(engine.sync_engine, "handle_error", _timeouts_are_disconnects)
    return engine


def _prepare_file(path: Path, url: URL) -> None:
    """Create the SQLite file's directory and open the file, or say in one line why they cannot be.

    Opened here first because aiosqlite, when it fails to open a file, leaves its thread to report to an
    event loop that may be closed by then (a command that gives up at once), with a traceback."""
    cannot = f"cannot write to the database at {describe(url)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        # mkdir's "File exists", when a file has the directory's name, would read as no error at all.
        why = "a file of that name exists" if isinstance(exc, FileExistsError) else exc.strerror or exc
        raise StoreUnavailableError(f"{cannot}: cannot create the directory {path.parent}: {why}") from exc
    try:
        sqlite3.connect(path).close()
    except sqlite3.Error as exc:
        raise StoreUnavailableError(f"{cannot}: {exc}") from exc


def _timeouts_are_disconnects(context: ExceptionContext) -> None:
    # asyncpg raises a bare TimeoutError when a statement outlives `command_timeout`, and SQLAlchemy
    # only treats driver errors as disconnects, so it would put the connection back in the pool with
    # the cancelled statement still pending on it. A connection that did not answer in time is as good
    # as gone: discard it, and with it the rest of the pool (they share the link that failed).
    if isinstance(context.original_exception, OSError):
        context.is_disconnect = True


def is_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the database could not be reached (or did not answer in time), rather
    than a bad statement: the request may be retried once it is back."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError):
        return True
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or _postgres_refusal(exc)):
        return True
    # Connection refused or reset, and TimeoutError (an OSError) from asyncpg's own timeouts.
    return isinstance(exc, OSError)


# PostgreSQL's codes for a read-only database or server (a standby, default_transaction_read_only), and
# for a full disk.
_PG_READ_ONLY, _PG_DISK_FULL = "25006", "53100"


def _sqlstate(exc: BaseException) -> str:
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code if isinstance(code, str) else ""


def _postgres_refusal(exc: DBAPIError) -> bool:
    # Read-only, and class 53, insufficient resources (a full disk, too many connections): an operator's
    # fix, not the request's.
    code = _sqlstate(exc)
    return code == _PG_READ_ONLY or code.startswith("53")


# SQLite's answers that mean its file cannot be written: read-only, locked by another process, full,
# impossible to create or open for writing, or an I/O error.
_SQLITE_WRITE_REFUSALS = frozenset(
    {
        sqlite3.SQLITE_PERM,
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
    }
)


def refuses_writes(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be written, rather than that it cannot be reached."""
    original = getattr(exc, "orig", exc)
    code = getattr(original, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_WRITE_REFUSALS
    return _sqlstate(exc) in (_PG_READ_ONLY, _PG_DISK_FULL)


def failure_reason(exc: BaseException) -> str:
    """The driver's own words, on one line, without SQLAlchemy's wrapping and links."""
    if isinstance(exc, TimeoutError):
        # asyncpg's timeouts say nothing (their cause is a bare CancelledError).
        return "no answer in time"
    original = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return text[:300]


def create_sqlite_writer_engine(database_url: str) -> Engine:
    """SQLite's writer: the stdlib driver, one connection, used from one thread only.

    A write transaction runs as one call in that thread: through aiosqlite every statement would be
    several hops between its thread and the event loop, and they add up to most of a commit's time."""
    url = async_url(database_url).set(drivername="sqlite+pysqlite")
    engine = create_engine(
        url,
        json_serializer=json_dumps,
        json_deserializer=orjson.loads,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        # The connection is made in the writer's thread and stays there; the check guards nothing here.
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _set_sqlite_pragmas)
    event.listen(engine, "connect", _fail_when_busy)
    event.listen(engine, "connect", _checkpoint_elsewhere)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _fail_when_busy(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # The writer's transactions may run on the event loop (store/runner.py), which must never wait for
    # another process's lock: they fail at once instead, and are run again, waiting, on the writer thread.
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def _checkpoint_elsewhere(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # WalCheckpointer (store/checkpoint.py) copies the log into the database file on its own thread; the
    # writer's own automatic checkpoint stays only as a backstop for when it falls behind.
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")


def is_sqlite_busy(exc: BaseException) -> bool:
    """True when SQLite refused a lock another connection holds ("database is locked")."""
    original = getattr(exc, "orig", exc)
    code = getattr(original, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_BUSY
