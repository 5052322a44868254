"""Databases that cannot be written, made for real, as root too (root ignores permission bits):

- `held_write_lock(path)`: another process holds SQLite's write lock (`BEGIN IMMEDIATE`) until the block
  ends;
- `immutable(path)`: `chattr +i` on a file or directory (skips the test where the filesystem or the
  container does not allow it);
- `own_postgres_database(admin_url)`: a PostgreSQL database of the test's own, which `set_read_only`
  makes read-only (`default_transaction_read_only`).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

WAIT_SECONDS = 10.0

# Takes the write lock, says so, and holds it until its stdin closes.
_LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
"""


@contextmanager
def held_write_lock(database: Path) -> Iterator[None]:
    """Another process holds the write lock of the SQLite file `database` while the block runs."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _LOCK_HOLDER, str(database)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        # readline returns at once with "" if the holder dies instead.
        assert holder.stdout.readline().strip() == "locked", "the lock holder could not take the lock"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # the holder exits, and its lock goes with it
        try:
            holder.wait(timeout=WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait(timeout=WAIT_SECONDS)
        if holder.stdout is not None:
            holder.stdout.close()


def _chattr(flag: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chattr", flag, str(path)], capture_output=True, text=True, timeout=WAIT_SECONDS, check=False
    )


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """`path` (a file or a directory) cannot be changed, by root either, while the block runs."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    made = _chattr("+i", path)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not allowed here: {made.stderr.strip()}")
    try:
        yield
    finally:
        undone = _chattr("-i", path)
        assert undone.returncode == 0, undone.stderr


async def _admin(admin_url: str, *statements: str) -> None:
    dsn = make_url(admin_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@dataclass(frozen=True)
class OwnDatabase:
    """A PostgreSQL database of the test's own, at `url`, managed from another one (`admin_url`)."""

    admin_url: str
    url: str
    name: str

    def set_read_only(self, read_only: bool) -> None:
        """Make the database read-only, or writable again, for every session, the current ones too: they
        are ended (as by a restart of the server), and their clients reconnect to the new setting."""
        value = "on" if read_only else "off"
        asyncio.run(
            _admin(
                self.admin_url,
                f'ALTER DATABASE "{self.name}" SET default_transaction_read_only = {value}',
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self.name}'",
            )
        )


@contextmanager
def own_postgres_database(admin_url: str) -> Iterator[OwnDatabase]:
    """A new, empty database on the server of `admin_url`, dropped after the block."""
    name = f"activity_feed_writes_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        yield OwnDatabase(admin_url=admin_url, url=url, name=name)
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
