"""`serve`, `db upgrade` and `prune` on a database they cannot write: one line on stderr, exit status 1,
never a traceback, and `serve` never starts to serve. Each database is made unwritable for real, as root
too: an immutable file or directory (chattr), a path through a file, another process's write lock, a
read-only PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cli.test_main import clean_env
from tests.conftest import POSTGRES_URL
from tests.support.server import free_port
from tests.support.unwritable import held_write_lock, immutable, own_postgres_database

SCRIPT = Path(sys.executable).with_name("activity-feed")
# Long enough for a migration and a lock's wait (SQLite's busy timeout, 5 s) twice over; `serve` on a
# database it can write would still be serving by then.
COMMAND_TIMEOUT_SECONDS = 40


def run(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_SECONDS,
        check=False,
    )


def run_all(to_run: Mapping[str, Sequence[str]], cwd: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each command at once (they refuse independently), to keep the wait for each one's refusal short."""
    with ThreadPoolExecutor(max_workers=len(to_run)) as pool:
        futures = {name: pool.submit(run, args, cwd) for name, args in to_run.items()}
    return {name: future.result() for name, future in futures.items()}


def commands(url: str) -> dict[str, list[str]]:
    return {
        "serve": ["serve", "--port", str(free_port()), "--database-url", url],
        "db upgrade": ["db", "upgrade", "--database-url", url],
        "prune": ["prune", "--all", "--database-url", url],
    }


def assert_refused(result: subprocess.CompletedProcess[str], prefix: str, reason: str) -> None:
    """Exit 1 with exactly one line on stderr, `<prefix>...: <reason>`, and no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(prefix), lines[0]
    assert lines[0].endswith(reason), lines[0]
    assert "Uvicorn running" not in result.stderr + result.stdout


def assert_prune_finds_no_database(
    results: dict[str, subprocess.CompletedProcess[str]], database: Path
) -> None:
    """`prune` on a SQLite file that is not there refuses it as `export` does, before opening anything:
    opening it would create it. The other commands create it, and say why they cannot."""
    url = f"sqlite+aiosqlite:///{database}"
    assert_refused(
        results.pop("prune"), f"activity-feed: no database at {url}: ", f"{database} is not a file"
    )


def migrated_sqlite(directory: Path) -> Path:
    database = directory / "feed.db"
    done = run(["db", "upgrade", "--database-url", f"sqlite:///{database}"], directory)
    assert done.returncode == 0, done.stderr
    return database


def test_commands_refuse_a_read_only_sqlite_file(tmp_path: Path) -> None:
    database = migrated_sqlite(tmp_path)
    url = f"sqlite:///{database}"

    with immutable(database):
        results = run_all(commands(url), tmp_path)

    prefix = f"activity-feed: cannot write to the database at sqlite+aiosqlite:///{database}: "
    for result in results.values():
        assert_refused(result, prefix, "attempt to write a readonly database")


@pytest.mark.parametrize("existing", [True, False], ids=["existing database", "new database"])
def test_commands_refuse_a_directory_they_cannot_write_in(tmp_path: Path, existing: bool) -> None:
    # SQLite creates the write-ahead log and its index beside the database: an existing file is no help.
    directory = tmp_path / "data"
    directory.mkdir()
    if existing:
        migrated_sqlite(directory)
    url = f"sqlite:///{directory / 'feed.db'}"

    with immutable(directory):
        results = run_all(commands(url), tmp_path)

    if not existing:
        assert_prune_finds_no_database(results, directory / "feed.db")
    prefix = f"activity-feed: cannot write to the database at sqlite+aiosqlite:///{directory / 'feed.db'}: "
    for result in results.values():
        assert_refused(result, prefix, "unable to open database file")


def test_commands_refuse_a_directory_they_cannot_create(tmp_path: Path) -> None:
    # Under a directory that cannot change, and under a file: neither can be made, by root either.
    frozen = tmp_path / "frozen"
    frozen.mkdir()
    (tmp_path / "file").write_text("not a directory")
    under_a_file = tmp_path / "file" / "feed.db"
    missing = frozen / "missing" / "feed.db"

    with immutable(frozen):
        results = run_all(commands(f"sqlite:///{missing}"), tmp_path)

    assert_prune_finds_no_database(results, missing)
    for result in results.values():
        assert_refused(
            result,
            f"activity-feed: cannot write to the database at sqlite+aiosqlite:///{missing}: ",
            f"cannot create the directory {missing.parent}: Operation not permitted",
        )
    results = run_all(commands(f"sqlite:///{under_a_file}"), tmp_path)
    assert_prune_finds_no_database(results, under_a_file)
    for result in results.values():
        assert_refused(
            result,
            f"activity-feed: cannot write to the database at sqlite+aiosqlite:///{under_a_file}: ",
            f"cannot create the directory {under_a_file.parent}: a file of that name exists",
        )


def test_commands_refuse_a_database_another_process_keeps_locked(tmp_path: Path) -> None:
    database = migrated_sqlite(tmp_path)
    url = f"sqlite:///{database}"
    to_run = commands(url)

    # Each waits for the lock as long as a write would (SQLite's busy timeout) before giving up.
    with held_write_lock(database):
        results = run_all({name: to_run[name] for name in ("serve", "prune")}, tmp_path)

    prefix = f"activity-feed: cannot write to the database at sqlite+aiosqlite:///{database}: "
    for result in results.values():
        assert_refused(result, prefix, "database is locked")
    # Once the lock is gone the same database serves again.
    assert run(to_run["db upgrade"], tmp_path).returncode == 0


@pytest.mark.usefixtures("postgres_database")  # skips, or fails under CI, without PostgreSQL
@pytest.mark.parametrize("migrated", [True, False], ids=["migrated", "empty"])
def test_commands_refuse_a_read_only_postgresql_database(tmp_path: Path, migrated: bool) -> None:
    with own_postgres_database(POSTGRES_URL) as database:
        if migrated:
            assert run(["db", "upgrade", "--database-url", database.url], tmp_path).returncode == 0
        database.set_read_only(True)

        results = run_all(commands(database.url), tmp_path)

    shown = database.url.replace("postgresql://", "postgresql+asyncpg://")
    for result in results.values():
        assert_refused(
            result, f"activity-feed: cannot write to the database at {shown}: ", "in a read-only transaction"
        )
