"""A database URL the feed cannot use (of an unknown kind, or an in-memory SQLite database) is a bad
setting: every command that reads it refuses it the same way, one line on stderr and exit status 2,
before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_main import clean_env, run_cli
from tests.support.server import free_port

IN_MEMORY = ["sqlite://", "sqlite:///?mode=ro", "sqlite:///:memory:"]


def _commands(url: str) -> list[list[str]]:
    port = str(free_port())
    return [
        ["serve", "--port", port, "--database-url", url],
        ["demo", "--port", port, "--no-wait", "--pace", "0", "--database-url", url],
        ["db", "upgrade", "--database-url", url],
        ["prune", "--all", "--database-url", url],
    ]


COMMANDS = ["serve", "demo", "db-upgrade", "prune"]


@pytest.mark.parametrize("url", IN_MEMORY)
@pytest.mark.parametrize("command", range(len(COMMANDS)), ids=COMMANDS)
def test_an_in_memory_sqlite_database_is_refused_with_what_to_give_instead(
    tmp_path: Path, url: str, command: int
) -> None:
    result = run_cli(_commands(url)[command], tmp_path)

    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("activity-feed: invalid setting database_url: ")
    assert "in-memory SQLite database" in result.stderr
    assert "give a file, e.g. sqlite:///./activity.db" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_in_memory_database_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    result = run_cli(["db", "upgrade"], tmp_path, clean_env(ACTIVITY_FEED_DATABASE_URL="sqlite://"))

    assert result.returncode == 2
    assert result.stderr.startswith("activity-feed: invalid setting database_url: 'sqlite://' is an in-")
    assert result.stderr.count("\n") == 1


def test_export_refuses_an_in_memory_database_as_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(["export", "--database-url", "sqlite://"], tmp_path)

    assert result.returncode == 2
    assert result.stderr.startswith("activity-feed: --database-url: 'sqlite://' is an in-memory")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bogus", "not a database URL: 'bogus'"),
        ("mysql://x/y", "unsupported database 'mysql': use sqlite:///path or postgresql://..."),
    ],
    ids=["not-a-url", "mysql"],
)
@pytest.mark.parametrize("command", range(len(COMMANDS)), ids=COMMANDS)
def test_an_unsupported_database_url_is_a_usage_error_in_every_command(
    tmp_path: Path, url: str, message: str, command: int
) -> None:
    result = run_cli(_commands(url)[command], tmp_path)

    assert result.returncode == 2, result.stderr
    assert result.stderr == f"activity-feed: invalid setting database_url: {message}\n"


def test_export_says_the_same_of_an_unsupported_database_url(tmp_path: Path) -> None:
    result = run_cli(["export", "--database-url", "mysql://x/y"], tmp_path)

    assert result.returncode == 2
    assert result.stderr == (
        "activity-feed: --database-url: unsupported database 'mysql': use sqlite:///path or postgresql://...\n"
    )
