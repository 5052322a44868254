"""Settings too large to use (a cutoff before the first year, a sleep or a number the database cannot
hold) are refused at start: one line on stderr and exit status 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from activity_feed.cli.main import main
from tests.cli.test_main import clean_env, run_cli
from tests.support.server import free_port

TOO_LARGE = [
    ("ACTIVITY_FEED_RETENTION_DAYS", "1e8", "retention_days: Input should be less than or equal to 36500"),
    ("ACTIVITY_FEED_RETENTION_DAYS", "inf", "retention_days: Input should be a finite number"),
    ("ACTIVITY_FEED_RETENTION_MAX_EVENTS", "1" + "0" * 30, "retention_max_events: Input should be less"),
    ("ACTIVITY_FEED_PENDING_TIMEOUT", "99999999999d", "pending_timeout: too long a duration"),
    ("ACTIVITY_FEED_PENDING_TIMEOUT", "99999999d", "pending_timeout: Input should be less than or equal"),
    ("ACTIVITY_FEED_MAINTENANCE_INTERVAL", "1e400s", "maintenance_interval: not a duration"),
    ("ACTIVITY_FEED_MAINTENANCE_INTERVAL", "9" * 400, "maintenance_interval: too long a"),
    ("ACTIVITY_FEED_MAINTENANCE_INTERVAL", "400d", "maintenance_interval: Input should be less than or"),
    ("ACTIVITY_FEED_DATABASE_TIMEOUT", "99999999d", "database_timeout: Input should be less than or equal"),
    ("ACTIVITY_FEED_MAX_CLOCK_SKEW", "99999999d", "max_clock_skew: Input should be less than or equal"),
    ("ACTIVITY_FEED_MAX_CLOCK_SKEW", "nan", "max_clock_skew: not a duration: 'nan'"),
]


@pytest.mark.parametrize(
    ("name", "value", "message"), TOO_LARGE, ids=[f"{n}={v[:12]}" for n, v, _ in TOO_LARGE]
)
def test_prune_refuses_a_setting_too_large_to_use(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(name, value)
    db = tmp_path / "feed.db"

    status = main(["prune", "--keep", "5", "--database-url", f"sqlite:///{db}"])

    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.startswith(f"activity-feed: invalid setting {message}")
    assert err.count("\n") == 1
    assert not db.exists()  # refused before the database was touched


@pytest.mark.parametrize(
    ("name", "value"),
    [("ACTIVITY_FEED_RETENTION_DAYS", "1e8"), ("ACTIVITY_FEED_MAINTENANCE_INTERVAL", "99999999999d")],
)
def test_serve_refuses_a_setting_too_large_to_use_before_it_starts(
    tmp_path: Path, name: str, value: str
) -> None:
    env = clean_env(**{name: value})

    result = run_cli(
        ["serve", "--port", str(free_port()), "--database-url", f"sqlite:///{tmp_path / 'f.db'}"],
        tmp_path,
        env,
    )

    assert result.returncode == 2
    assert result.stderr.startswith("activity-feed: invalid setting ")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
